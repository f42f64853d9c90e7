"""The admin's "Register webhook": list action and button, through connection_webhook_ensure."""

from __future__ import annotations

import pytest
from django.test import Client

from integrations.fake_trackers.base import Fault
from integrations.models import Connection
from tests.admin.conftest import messages_of, staff_with

CHANGELIST = "/admin/integrations/connection/"


def test_the_button_creates_then_finds_the_hook(tracker, staff_client):
    url = f"/admin/integrations/connection/{tracker.connection.pk}/webhook/"
    page = staff_client.get(f"/admin/integrations/connection/{tracker.connection.pk}/change/")
    assert f'action="{url}"' in page.content.decode()
    first = staff_client.post(url)
    assert first.status_code == 302
    (message,) = messages_of(first)
    assert "webhook created" in message and tracker.connection.webhook_url in message
    [hook] = tracker.fake.hooks.values()
    assert hook.url == tracker.connection.webhook_url and hook.secret == "hook-secret"
    again = messages_of(staff_client.post(url))[-1]  # the first message was never shown
    assert "already in place" in again
    assert staff_client.get(url).status_code == 405


def test_the_list_action_repairs_a_disabled_hook(tracker, staff_client):
    staff_client.post(
        f"/admin/integrations/connection/{tracker.connection.pk}/webhook/", follow=True
    )
    [hook] = tracker.fake.hooks.values()
    tracker.fake.set_hook_active(hook.id, False)
    response = staff_client.post(
        CHANGELIST, {"action": "register_webhook", "_selected_action": [tracker.connection.pk]}
    )
    (message,) = messages_of(response)
    assert "webhook repaired" in message and "disabled" in message
    assert tracker.fake.hooks[hook.id].active


def test_a_token_without_rights_gets_the_manual_steps(tracker, staff_client):
    tracker.fake.inject(Fault(status=403, path_contains="/hooks", count=5))
    response = staff_client.post(f"/admin/integrations/connection/{tracker.connection.pk}/webhook/")
    (message,) = messages_of(response)
    assert "may not manage" in message and "By hand:" in message
    assert f"Payload URL: {tracker.connection.webhook_url}" in message


@pytest.mark.django_db
def test_redmine_has_no_button_and_the_action_says_polled_only(staff_client):
    redmine = Connection.objects.create(
        name="rm", provider="redmine", base_url="http://127.0.0.1:9", repository="widgets"
    )
    page = staff_client.get(f"/admin/integrations/connection/{redmine.pk}/change/").content
    assert b"/webhook/" not in page
    response = staff_client.post(
        CHANGELIST, {"action": "register_webhook", "_selected_action": [redmine.pk]}
    )
    (message,) = messages_of(response)
    assert "polled only" in message


def test_registering_needs_the_change_permission(tracker):
    viewer = Client()
    viewer.force_login(staff_with("integrations.view_connection"))
    url = f"/admin/integrations/connection/{tracker.connection.pk}/webhook/"
    assert viewer.post(url).status_code == 403
    assert "register_webhook" not in viewer.get(CHANGELIST).content.decode()
    assert not tracker.fake.hooks


def test_the_full_pass_repairs_a_deleted_or_disabled_hook(tracker, staff_client):
    from issues.polling import sync_connection

    connection_id = tracker.connection.pk
    # Never registered through us: the full pass leaves the tracker's hooks alone.
    assert sync_connection(connection_id=connection_id, full=True).success
    assert not tracker.fake.hooks

    staff_client.post(f"/admin/integrations/connection/{connection_id}/webhook/")
    [hook] = tracker.fake.hooks.values()
    tracker.fake.delete_hook(hook.id)
    run = sync_connection(connection_id=connection_id, full=True)
    assert run.success and run.error == ""
    [again] = tracker.fake.hooks.values()
    assert again.active and again.url == tracker.connection.webhook_url

    tracker.fake.set_hook_active(again.id, False)
    assert sync_connection(connection_id=connection_id, full=True).success
    assert tracker.fake.hooks[again.id].active
    # An incremental poll does not look at hooks.
    tracker.fake.set_hook_active(again.id, False)
    assert sync_connection(connection_id=connection_id, full=False).success
    assert not tracker.fake.hooks[again.id].active


def test_a_failing_recheck_is_noted_on_the_run_and_never_fails_it(tracker, staff_client):
    from issues.polling import sync_connection

    connection_id = tracker.connection.pk
    staff_client.post(f"/admin/integrations/connection/{connection_id}/webhook/")
    tracker.fake.inject(Fault(status=403, path_contains="/hooks", count=5))
    run = sync_connection(connection_id=connection_id, full=True)
    assert run.success
    assert run.error.startswith("webhook check failed: The token may not manage")
