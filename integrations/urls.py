from django.urls import path

from integrations.webhooks import receive_webhook

urlpatterns = [
    path("<str:provider>/", receive_webhook, name="webhook"),
    path("<str:provider>/<int:connection_id>/", receive_webhook, name="webhook-connection"),
]
