"""`/`: a small page saying what this is and where to go (the admin's "View site" link)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

SITE_HEADER = "Syndarix Sync administration"


def admin_site_configure() -> None:
    """The header, and the index order: the sync's own apps first, beat's periodic tasks
    (managed by the sync itself) last."""
    site = admin.site
    site.site_header = SITE_HEADER
    site.site_title = "Syndarix Sync"
    site.index_title = "Sync health and administration"
    site.site_url = "/"
    original = site.get_app_list
    order = {"integrations": 0, "issues": 1, "notifications": 2, "auth": 8, "django_celery_beat": 9}

    def get_app_list(request: HttpRequest, app_label: str | None = None) -> list[dict[str, object]]:
        apps = original(request, app_label)
        return sorted(apps, key=lambda app: order.get(str(app["app_label"]), 5))

    site.get_app_list = get_app_list  # type: ignore[method-assign]


@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    return TemplateResponse(
        request, "landing.html", {"public_url": settings.PUBLIC_URL, "title": SITE_HEADER}
    )
