from django.urls import path, re_path

from issues.api import views
from notifications.api import EventListApi

urlpatterns = [
    path("issues/", views.IssueListCreateApi.as_view(), name="api-issue-list"),
    path("issues/<int:pk>/", views.IssueDetailApi.as_view(), name="api-issue-detail"),
    path("issues/<int:pk>/close/", views.IssueCloseApi.as_view(), name="api-issue-close"),
    path("issues/<int:pk>/reopen/", views.IssueReopenApi.as_view(), name="api-issue-reopen"),
    path("issues/<int:pk>/history/", views.IssueHistoryApi.as_view(), name="api-issue-history"),
    path("issues/<int:pk>/refresh/", views.IssueRefreshApi.as_view(), name="api-issue-refresh"),
    path("sync/configs/", views.ConnectionListCreateApi.as_view(), name="api-config-list"),
    path("sync/configs/<int:pk>/", views.ConnectionDetailApi.as_view(), name="api-config-detail"),
    path("sync/configs/<int:pk>/sync/", views.ConnectionSyncApi.as_view(), name="api-config-sync"),
    path(
        "sync/configs/<int:pk>/webhook/",
        views.ConnectionWebhookApi.as_view(),
        name="api-config-webhook",
    ),
    path("sync/status/", views.SyncStatusApi.as_view(), name="api-sync-status"),
    path("sync/history/", views.SyncHistoryApi.as_view(), name="api-sync-history"),
    path("sync/mappings/", views.SyncMappingsApi.as_view(), name="api-sync-mappings"),
    path("sync/conflicts/", views.ConflictListApi.as_view(), name="api-conflict-list"),
    path("sync/conflicts/<int:pk>/", views.ConflictDetailApi.as_view(), name="api-conflict-detail"),
    path(
        "sync/conflicts/<int:pk>/resolve/",
        views.ConflictResolveApi.as_view(),
        name="api-conflict-resolve",
    ),
    path("events/", EventListApi.as_view(), name="api-event-list"),
    # Last: everything else under /api/v1/ is a JSON 404.
    re_path(r"^(?P<unmatched>[\s\S]*)$", views.api_not_found, name="api-not-found"),
]
