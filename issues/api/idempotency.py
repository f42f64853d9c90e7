"""`Idempotency-Key` for writes: a retried request is answered from the stored response.

Same token + same key + same request (method, path, query, body) → the first response is
replayed and nothing changes twice. Same key with a different request → 409. A key is
claimed in its own committed row before the write runs, so a concurrent retry sees it
(409, still in progress) instead of racing it. Only successful (2xx) responses are stored:
after an error the key is released and the corrected request may reuse it. Keys live 24 h.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.http import QueryDict
from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import APIException, NotAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from issues.models import ApiToken, IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_LIFETIME = timedelta(hours=24)
# A claim without a response after this long belongs to a request that died: its atomic
# write was rolled back, so the key may be claimed again.
ABANDONED_AFTER = timedelta(minutes=5)
MAX_KEY_LENGTH = 255

Handler = Callable[..., Response]


class IdempotencyConflict(APIException):
    status_code = 409
    default_detail = "This Idempotency-Key cannot be used for this request."
    default_code = "idempotency_conflict"


def request_fingerprint(request: Request) -> str:
    data = request.data
    if isinstance(data, QueryDict):
        data = {key: data.getlist(key) for key in sorted(data)}
    material = {
        "method": request.method,
        "path": request.path,
        "query": sorted((key, sorted(values)) for key, values in request.query_params.lists()),
        "body": data,
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _valid_key(raw: str) -> str:
    key = raw.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise serializers.ValidationError(
            {HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."]}
        )
    return key


def _claim(*, request: Request, key: str, fingerprint: str) -> tuple[IdempotencyRecord, bool]:
    """(record, True) when this request now owns the key; (existing record, False) if not."""
    user = request.user
    token = request.auth
    if user is None or isinstance(user, AnonymousUser) or not isinstance(token, ApiToken):
        raise NotAuthenticated()  # the permission check runs first; a key needs an owner
    # A key belongs to the token that sent it, not to its user: another token of the same
    # user may be scoped to other connections, and a replay would show it their answer.
    now = timezone.now()
    for _ in range(3):
        with transaction.atomic():
            expired = now - KEY_LIFETIME
            IdempotencyRecord.objects.filter(token=token, created_at__lt=expired).delete()
            IdempotencyRecord.objects.filter(
                token=token,
                key=key,
                response_status__isnull=True,
                created_at__lt=now - ABANDONED_AFTER,
            ).delete()
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        user=user,
                        token=token,
                        key=key,
                        request_fingerprint=fingerprint,
                        method=request.method or "",
                        path=request.get_full_path()[:2000],
                    )
                return record, True
            except IntegrityError:
                existing = IdempotencyRecord.objects.filter(token=token, key=key).first()
            if existing is not None:
                return existing, False
        # The holder released the key between our insert and our read: try again.
    raise IdempotencyConflict(
        {
            "detail": "A request with this Idempotency-Key is in progress.",
            "code": "idempotency_key_in_progress",
        }
    )


def _answer_from(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_fingerprint != fingerprint:
        raise IdempotencyConflict(
            {
                "detail": "This Idempotency-Key was already used with a different request.",
                "code": "idempotency_key_reused",
            }
        )
    if record.response_status is None:
        raise IdempotencyConflict(
            {
                "detail": "A request with this Idempotency-Key is in progress.",
                "code": "idempotency_key_in_progress",
            }
        )
    return Response(
        record.response_body, status=record.response_status, headers={REPLAYED_HEADER: "true"}
    )


def _store(record: IdempotencyRecord, response: Response) -> None:
    record.response_status = response.status_code
    # Round-trip through JSON so the stored body is exactly what a replay will render.
    record.response_body = json.loads(json.dumps(response.data, cls=DjangoJSONEncoder))
    record.completed_at = timezone.now()
    record.save(update_fields=["response_status", "response_body", "completed_at"])


def idempotent(*, atomic: bool = True, prepare: str | None = None) -> Callable[[Handler], Handler]:
    """Decorate a write handler of an APIView. With `atomic`, the write and the stored
    response commit together; without (a handler that calls a tracker and must not hold a
    transaction open meanwhile), the response is stored after the handler returns.

    `prepare` names a method of the view that validates the request and returns what the
    handler needs (passed as `prepared=`). It runs before the transaction opens: validation
    may ask the tracker (does Redmine define this label?), and a tracker's round trip must not
    hold a database transaction open. A key is claimed before it runs, so a replay is
    answered from the stored response, not validated again."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
            def prepared() -> dict[str, Any]:
                if prepare is None:
                    return kwargs
                return {**kwargs, "prepared": getattr(view, prepare)(request, *args, **kwargs)}

            raw_key = request.headers.get(HEADER)
            if raw_key is None:
                return handler(view, request, *args, **prepared())
            key = _valid_key(raw_key)
            fingerprint = request_fingerprint(request)
            record, owned = _claim(request=request, key=key, fingerprint=fingerprint)
            if not owned:
                return _answer_from(record, fingerprint)
            try:
                arguments = prepared()
                if atomic:
                    with transaction.atomic():
                        response = handler(view, request, *args, **arguments)
                        if response.status_code < 300:
                            _store(record, response)
                else:
                    response = handler(view, request, *args, **arguments)
                    if response.status_code < 300:
                        _store(record, response)
            except BaseException:
                _release(record)
                raise
            if response.status_code >= 300:
                _release(record)
            return response

        return wrapper

    return decorate


def _release(record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk, response_status__isnull=True).delete()
