"""The rate-limit gate: one pause per connection that every tracker call passes.

A tracker that answers 429 (or 403 with an exhausted limit) pauses the whole connection, not
one call: polls, pushes and re-reads of the same token share the tracker's budget. The pause
lives in `Connection.rate_limited_until` so that every worker process sees it.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from integrations.models import Connection
from integrations.providers.base import RateLimitedError


class ConnectionGate:
    """`RateLimitGate` on `Connection.rate_limited_until` (one cheap read per tracker call)."""

    def __init__(self, connection_id: int) -> None:
        self.connection_id = connection_id

    def check(self) -> None:
        until = (
            Connection.objects.filter(pk=self.connection_id)
            .values_list("rate_limited_until", flat=True)
            .first()
        )
        now = timezone.now()
        if until is not None and until > now:
            remaining = (until - now).total_seconds()
            raise RateLimitedError(
                f"connection {self.connection_id} is paused by the tracker's rate limit "
                f"for {remaining:.0f} more seconds",
                retry_after=remaining,
            )

    def hold(self, seconds: float) -> None:
        """Pause the connection for `seconds`; a longer pause already set is kept."""
        until = timezone.now() + timedelta(seconds=max(0.0, seconds))
        Connection.objects.filter(pk=self.connection_id).filter(
            Q(rate_limited_until__isnull=True) | Q(rate_limited_until__lt=until)
        ).update(rate_limited_until=until)

    def release_thread(self) -> None:
        """`check` opened a database connection in the calling thread (Django's are per
        thread): a prefetch thread that ends closes it rather than leave it to the GC."""
        connection.close()
