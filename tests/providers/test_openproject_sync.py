"""An OpenProject connection against the simulated OpenProject: the engine, the outbox and the
webhook intake over real HTTP and the real database — no mocks.

The point of OpenProject's lockVersion: a human edit that lands between the outbox's read and
its write makes the write a 409, and the outbox's next attempt reads again and merges (or
records a conflict) instead of overwriting the human.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from integrations.fake_trackers.base import Fault
from integrations.fake_trackers.openproject import FakeOpenProject
from integrations.models import Connection, WebhookDelivery
from issues.models import Conflict, OutboxEntry, OutboxStatus, SyncStatus
from issues.services.issues import issue_create, issue_update
from tests.api.conftest import World
from tests.engine.conftest import ProviderHarness

SECRET = "hook-secret"


@pytest.fixture
def op(db: Any) -> Iterator[ProviderHarness]:
    fake = FakeOpenProject(token="op-token", webhook_secret=SECRET)
    fake.start()
    connection = Connection.objects.create(
        name="demo",
        provider="openproject",
        base_url=fake.url,
        repository=fake.repository,
        api_token="op-token",
        webhook_secret=SECRET,
    )
    try:
        yield ProviderHarness(fake, connection)
    finally:
        fake.stop()


def mirrored(h: ProviderHarness, **seed: Any) -> tuple[Any, Any]:
    fake_issue = h.fake.seed_issue(notify=True, **{"title": "Crash on save", **seed})
    h.deliver_all()
    return fake_issue, h.issue(fake_issue.number)


def human_edits_once_before_our_write(h: ProviderHarness, **changes: Any) -> None:
    """A human saves the work package after the outbox read it and before its PATCH lands."""

    def edit(number: int) -> None:
        h.fake.before_update = None
        h.fake.advance_clock(5)
        h.fake.edit_issue(number, **changes)

    h.fake.before_update = edit


def retry_now(h: ProviderHarness) -> Any:
    OutboxEntry.objects.filter(status=OutboxStatus.PENDING).update(next_attempt_at=timezone.now())
    return h.drain()


def test_a_work_package_is_mirrored_from_its_signed_webhook(op):
    fake_issue, issue = mirrored(op, labels=["bug"], assignees=["bob"], milestone="v1")

    assert issue.snapshot() == {
        "title": "Crash on save",
        "body": "",
        "state": "open",
        "labels": ["bug"],
        "assignees": ["bob"],
        "milestone": "v1",
    }
    assert issue.remote_url == f"{op.fake.url}/work_packages/{fake_issue.number}"
    assert issue.sync_status == SyncStatus.SYNCED


def test_a_local_edit_is_pushed_with_its_lock_version_and_the_echo_is_a_no_op(op):
    fake_issue, issue = mirrored(op)
    issue_update(issue=issue, changes={"title": "Crash on save (macOS)", "state": "closed"})

    assert op.drain().pushed == 1
    remote = op.fake.issues[fake_issue.number]
    assert (remote.title, remote.state) == ("Crash on save (macOS)", "closed")
    assert op.fake.status(fake_issue.number).name == "Closed"
    op.deliver_all()  # the echo of our own write
    issue = op.issue(fake_issue.number)
    assert issue.sync_status == SyncStatus.SYNCED and issue.state == "closed"
    assert op.drain().pushed == 0


def test_a_409_on_a_concurrent_edit_of_another_field_becomes_a_merge(op):
    """Failed before (without lockVersion): the PATCH sent the title read before the human's
    edit; here the write is refused, re-read, and both edits survive."""
    fake_issue, issue = mirrored(op)
    issue_update(issue=issue, changes={"body": "steps to reproduce"})
    human_edits_once_before_our_write(op, title="Crash when saving")

    first = op.drain()

    assert first.pushed == 0 and first.retried == 1
    assert op.fake.issues[fake_issue.number].title == "Crash when saving"
    assert op.fake.count_requests("PATCH") == 1  # refused, and not retried blindly
    retry_now(op)
    op.deliver_all()
    remote = op.fake.issues[fake_issue.number]
    assert (remote.title, remote.body) == ("Crash when saving", "steps to reproduce")
    issue = op.issue(fake_issue.number)
    assert (issue.title, issue.body) == ("Crash when saving", "steps to reproduce")
    assert not Conflict.objects.exists()


def test_a_409_on_a_concurrent_edit_of_the_same_field_becomes_a_conflict(op):
    fake_issue, issue = mirrored(op)
    issue_update(issue=issue, changes={"title": "local title"})
    human_edits_once_before_our_write(op, title="remote title")

    op.drain()
    retry_now(op)
    op.deliver_all()

    assert op.fake.issues[fake_issue.number].title == "remote title"  # never overwritten
    conflict = Conflict.objects.get(issue__external_number=str(fake_issue.number))
    assert (conflict.field, conflict.local_value, conflict.remote_value) == (
        "title",
        "local title",
        "remote title",
    )
    assert op.issue(fake_issue.number).sync_status == SyncStatus.CONFLICT


def test_a_revert_of_our_lost_write_in_the_same_second_is_told_by_the_lock_version(op):
    """Soak seed 1062 (openproject, manual): our close landed, its answer and echo were
    lost, and a human reopened the work package within the same second. Its `updatedAt`
    did not move, nothing else changed: only the lockVersion, up by two (our write and
    the human's), tells that the close landed and was undone. It was written again."""
    fake_issue, issue = mirrored(op)
    read_stamp = op.fake.issues[fake_issue.number].updated_at
    issue_update(issue=issue, changes={"state": "closed"})
    op.fake.inject(Fault(status=502, method="PATCH", apply_then_fail=True))
    op.drain()
    op.fake.faults.clear()
    assert op.fake.issues[fake_issue.number].state == "closed"
    op.fake.edit_issue(fake_issue.number, state="open")  # a human, within the same second
    op.fake.issues[fake_issue.number].updated_at = read_stamp
    op.take_hooks()  # the echoes are lost

    retry_now(op)

    assert op.fake.issues[fake_issue.number].state == "open"  # not written over
    conflict = Conflict.objects.get(issue__external_number=str(fake_issue.number))
    assert (conflict.field, conflict.local_value, conflict.remote_value) == (
        "state",
        "closed",
        "open",
    )


def test_two_sides_replacing_the_one_category_is_a_conflict_not_two_categories(op):
    """Soak seed 2023 (openproject): the local side replaced the category bug by docs, a
    human replaced it by feature; merged element by element that made two categories,
    which OpenProject cannot hold — the push failed. One category is a scalar change."""
    fake_issue, issue = mirrored(op, labels=["bug"])
    issue_update(issue=issue, changes={"labels": ["docs"]})
    op.fake.edit_issue(fake_issue.number, labels=["feature"])
    op.deliver_all()

    op.drain()

    assert op.fake.issues[fake_issue.number].labels == ["feature"]
    conflict = Conflict.objects.get(issue__external_number=str(fake_issue.number))
    assert (conflict.field, conflict.local_value, conflict.remote_value) == (
        "labels",
        ["docs"],
        ["feature"],
    )
    assert not OutboxEntry.objects.filter(status=OutboxStatus.FAILED).exists()


def test_a_local_create_is_created_once_with_its_marker_and_not_duplicated(op):
    issue = issue_create(
        connection=op.connection,
        title="Made here",
        body="text",
        labels=["docs"],
        assignees=["carol"],
    )

    assert op.drain().pushed == 1
    op.deliver_all()
    (remote,) = op.fake.issues.values()
    assert remote.labels == ["docs"] and remote.assignees == ["carol"]
    assert "syndarix:create:" in remote.body
    issue.refresh_from_db()
    assert issue.external_number == str(remote.number) and issue.body == "text"
    assert op.connection.issues.count() == 1


def test_polling_finds_work_packages_the_webhooks_missed_closed_ones_too(op):
    op.fake.seed_issue(title="open one")
    op.fake.seed_issue(title="closed one", state="closed")

    op.poll(full=True)

    titles = {i.title: i.state for i in op.connection.issues.all()}
    assert titles == {"open one": "open", "closed one": "closed"}


# --- the intake's answers for OpenProject deliveries (SPEC §6) ------------------------------


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return {"X-OP-Signature": f"sha1={digest}"}


def post(h: ProviderHarness, body: bytes, headers: dict[str, str], path: str = "") -> Any:
    return h.client.post(
        f"/webhooks/openproject/{path}", data=body, content_type="application/json", headers=headers
    )


def a_delivery(h: ProviderHarness) -> bytes:
    hook = h.fake.build_webhook(h.fake.seed_issue(title="t"), "created")
    assert hook is not None
    return hook.body


def test_a_wrong_or_missing_signature_is_401_and_stores_nothing(op):
    body = a_delivery(op)

    assert post(op, body, signed(body, "wrong")).status_code == 401
    assert post(op, body, {}).status_code == 401
    assert not WebhookDelivery.objects.exists()


def test_a_project_no_connection_has_is_404(op):
    payload = json.loads(a_delivery(op))
    payload["work_package"]["_embedded"]["project"]["identifier"] = "someone-elses"
    body = json.dumps(payload).encode()

    assert post(op, body, signed(body)).status_code == 404


def test_addressed_by_connection_id_it_is_stored(op):
    body = a_delivery(op)
    response = post(op, body, signed(body), path=f"{op.connection.pk}/")

    assert response.status_code == 202
    assert post(op, body, signed(body), path=f"{op.connection.pk}/").status_code == 200  # again


@pytest.mark.parametrize("action", ["project:updated", "work_package:teleported"])
def test_actions_we_do_not_mirror_are_204(op, action):
    body = json.dumps({"action": action, "project": {"identifier": "demo-project"}}).encode()

    assert post(op, body, signed(body)).status_code == 204
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[1,2]", b'{"action":"work_package:updated"}', b'{"action": 7}'],
)
def test_a_body_no_openproject_sends_is_400(op, body):
    assert post(op, body, signed(body)).status_code == 400
    assert not WebhookDelivery.objects.exists()


# --- the API refuses what OpenProject cannot hold; config_json drives the statuses --------


def test_the_api_refuses_two_assignees_or_two_labels_for_openproject(op):
    world = World()
    api = world.client(world.staff_key)

    for field in ("assignees", "labels"):
        response = api.post(
            "/api/v1/issues/",
            {"connection": op.connection.pk, "title": "t", field: ["alice", "bob"]},
            format="json",
        )
        assert response.status_code == 400, response.content
        assert field in str(response.json())
    assert not op.connection.issues.exists()


def test_config_json_names_the_statuses_close_and_reopen_set(op):
    world = World()
    api = world.client(world.staff_key)
    refused = api.patch(
        f"/api/v1/sync/configs/{op.connection.pk}/",
        {"config_json": {"done_list": "Done"}},
        format="json",
    )
    assert refused.status_code == 400 and "done_list" in str(refused.json())
    op.connection.config_json = {"closed_status": "Rejected"}
    op.connection.save()
    fake_issue, issue = mirrored(op)

    issue_update(issue=issue, changes={"state": "closed"})
    op.drain()

    assert op.fake.status(fake_issue.number).name == "Rejected"
