"""The conflict changelist (filters, bulk actions) and the per-issue resolution page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from integrations.models import Connection
from issues.models import Conflict, Issue, OutboxEntry, OutboxStatus
from issues.services import issues as issue_services
from issues.services.issues import IssueServiceError
from tests.admin.conftest import PASSWORD, make_conflicts, messages_of, staff_with

LIST = "/admin/issues/conflict/"


def resolve_url(conflict_or_issue) -> str:
    conflict = (
        conflict_or_issue
        if isinstance(conflict_or_issue, Conflict)
        else conflict_or_issue.conflicts.order_by("id").first()
    )
    return f"/admin/issues/conflict/{conflict.pk}/resolve/"


def open_fields(issue: Issue) -> set[str]:
    return set(issue.conflicts.filter(resolved=False).values_list("field", flat=True))


def listed(response) -> list[int]:
    return [
        int(pk)
        for pk in re.findall(r'name="_selected_action" value="(\d+)"', response.content.decode())
    ]


# --- changelist -------------------------------------------------------------------------------


def test_the_list_shows_open_conflicts_by_default_with_filters(tracker, staff_client):
    issue = make_conflicts(tracker)
    title = issue.conflicts.get(field="title")
    body = issue.conflicts.get(field="body")
    milestone = issue.conflicts.get(field="milestone")
    Conflict.objects.filter(pk=body.pk).update(detected_at=timezone.now() - timedelta(hours=3))
    Conflict.objects.filter(pk=milestone.pk).update(detected_at=timezone.now() - timedelta(days=3))
    old = Conflict.objects.create(
        issue=issue,
        field="state",
        local_value="closed",
        remote_value="open",
        resolved=True,
        resolution="remote_wins",
    )

    page = staff_client.get(LIST)
    assert sorted(listed(page)) == sorted([title.pk, body.pk, milestone.pk])
    html = page.content.decode()
    assert "Crash on save (local)" in html and "Crash on save (remote)" in html
    assert f'href="{resolve_url(title)}"' in html
    assert old.pk in listed(staff_client.get(LIST + "?status=all"))
    assert listed(staff_client.get(LIST + "?status=resolved")) == [old.pk]
    assert listed(staff_client.get(LIST + "?field=title")) == [title.pk]
    assert listed(staff_client.get(LIST + "?age=hour")) == [title.pk]
    assert sorted(listed(staff_client.get(LIST + "?age=day"))) == sorted([title.pk, body.pk])
    assert listed(staff_client.get(LIST + "?age=older")) == [milestone.pk]
    other = Connection.objects.create(
        name="beta", provider="gitea", base_url="http://b.test", repository="b/c"
    )
    elsewhere = Conflict.objects.create(
        issue=Issue.objects.create(connection=other, external_id="1", title="t"),
        field="title",
        local_value="a",
        remote_value="b",
    )
    by_connection = "?issue__connection__id__exact={}"
    assert len(listed(staff_client.get(LIST + by_connection.format(tracker.connection.pk)))) == 3
    assert listed(staff_client.get(LIST + by_connection.format(other.pk))) == [elsewhere.pk]


@pytest.mark.parametrize(("action", "side"), [("take_remote", "remote"), ("take_local", "local")])
def test_bulk_take_remote_or_local(tracker, staff_client, superuser, action, side):
    issue = make_conflicts(tracker)
    ids = list(issue.conflicts.values_list("id", flat=True))
    first = Conflict.objects.get(issue=issue, field="milestone")
    issue_services.conflict_resolve(conflict=first, strategy="remote_wins")  # already settled
    response = staff_client.post(LIST + "?status=all", {"action": action, "_selected_action": ids})
    assert messages_of(response) == [
        f"Took the {side} value for 2 conflicts.",
        "1 already resolved, left as they were.",
    ]
    issue.refresh_from_db()
    assert open_fields(issue) == set()
    settled = issue.conflicts.exclude(pk=first.pk)
    assert {c.resolved_by for c in settled} == {superuser}
    assert {c.resolution for c in settled} == {f"{side}_wins"}
    if side == "local":
        assert (issue.title, issue.body) == (
            "Crash on save (local)",
            "Steps:\n1. open\n2. save\n3. crash",
        )
        assert OutboxEntry.objects.filter(issue=issue, status=OutboxStatus.PENDING).exists()
    else:
        assert issue.title == "Crash on save (remote)"
        assert issue.sync_status == "synced"


def test_bulk_actions_need_the_change_permission(tracker):
    issue = make_conflicts(tracker)
    viewer = Client()
    viewer.force_login(staff_with("issues.view_conflict"))
    assert "take_remote" not in viewer.get(LIST).content.decode()
    viewer.post(
        LIST,
        {
            "action": "take_remote",
            "_selected_action": list(issue.conflicts.values_list("id", flat=True)),
        },
    )
    assert open_fields(issue) == {"title", "body", "milestone"}


# --- the resolution page ----------------------------------------------------------------------


def test_the_page_shows_base_local_and_remote_with_differences_marked(tracker, staff_client):
    issue = make_conflicts(tracker)
    page = staff_client.get(resolve_url(issue))
    assert page.status_code == 200
    html = page.content.decode()
    for field in ("title", "body", "milestone"):
        assert f'id="conflict-{field}"' in html
    title = html[html.index('id="conflict-title"') : html.index('id="conflict-body"')]
    assert '<td data-side="base">' in title and "Crash on save" in title
    assert 'data-side="local" class="sx-changed"' in title
    assert "<ins> (local)</ins>" in title and "<ins> (remote)</ins>" in title
    body = html[html.index('id="conflict-body"') : html.index('id="conflict-milestone"')]
    assert "<ins>\n3. crash</ins>" in body  # local added a line
    assert "<ins> a file</ins>" in body  # remote added words
    milestone = html[html.index('id="conflict-milestone"') :]
    assert "v1" in milestone and "v2" in milestone and "(none)" in milestone
    assert 'name="csrfmiddlewaretoken"' in html
    assert html.count('type="radio"') == 3 * 4


def test_sets_show_added_and_removed_elements(tracker, staff_client):
    issue = make_conflicts(tracker)
    Conflict.objects.create(
        issue=issue,
        field="labels",
        base_value=["bug", "docs"],
        local_value=["bug", "ui"],
        remote_value=["docs"],
    )
    html = staff_client.get(resolve_url(issue)).content.decode()
    labels = html[html.index('id="conflict-labels"') :]
    local = labels[labels.index('data-side="local"') : labels.index('data-side="remote"')]
    remote = labels[labels.index('data-side="remote"') :]
    assert '<ins title="added">+ ui</ins>' in local and '<del title="removed">− docs</del>' in local
    assert '<del title="removed">− bug</del>' in remote
    assert 'value="bug, docs, ui"' in labels  # the merged box starts with both sides' elements
    assert "Comma-separated." in labels


def _post(client, issue, **choices):
    conflicts = {c.field: c for c in issue.conflicts.filter(resolved=False)}
    data = {"shown": ",".join(str(c.pk) for c in conflicts.values())}
    for field, choice in choices.items():
        strategy, _, merged = choice.partition(":")
        data[f"choice_{conflicts[field].pk}"] = strategy
        if merged:
            data[f"merged_{conflicts[field].pk}"] = merged
    return client.post(resolve_url(issue), data)


def test_apply_resolves_each_field_through_the_service(tracker, staff_client, superuser):
    issue = make_conflicts(tracker)
    response = _post(
        staff_client,
        issue,
        title="local_wins",
        body="merge:Steps:\n1. open a file\n2. save\n3. crash",
        milestone="remote_wins",
    )
    assert response.status_code == 302 and response["Location"] == resolve_url(issue)
    (message,) = messages_of(response)
    assert message.startswith(
        "Resolved 3 conflicts: Title (local wins), Description (merged "
        "value), Milestone (remote wins)."
    )
    issue.refresh_from_db()
    assert open_fields(issue) == set()
    assert (issue.title, issue.body, issue.milestone) == (
        "Crash on save (local)",
        "Steps:\n1. open a file\n2. save\n3. crash",
        None,
    )
    for conflict in issue.conflicts.all():
        assert conflict.resolved_by == superuser and conflict.resolved_at is not None
    pushed = set()
    for entry in OutboxEntry.objects.filter(issue=issue, status=OutboxStatus.PENDING):
        pushed |= set(entry.changes)
    assert pushed == {"title", "body"}  # the remote milestone needs no push

    after = staff_client.get(resolve_url(issue)).content.decode()
    assert "No open conflicts on this issue." in after
    assert 'id="resolved-conflicts"' in after and "root" in after
    assert 'href="/admin/issues/conflict/"' in after


def test_fields_left_undecided_stay_open(tracker, staff_client):
    issue = make_conflicts(tracker)
    response = _post(staff_client, issue, title="remote_wins")
    assert response.status_code == 302
    assert open_fields(issue) == {"body", "milestone"}
    page = staff_client.get(resolve_url(issue)).content.decode()
    assert 'id="conflict-body"' in page and 'id="conflict-title"' not in page


def test_nothing_chosen_or_an_invalid_merge_changes_nothing(tracker, staff_client):
    issue = make_conflicts(tracker)
    response = _post(staff_client, issue)
    assert response.status_code == 200
    assert "Pick a resolution for at least one field." in response.content.decode()
    response = _post(staff_client, issue, title="merge:   ", milestone="local_wins")
    assert response.status_code == 200
    assert "A title cannot be empty." in response.content.decode()
    assert open_fields(issue) == {"title", "body", "milestone"}


def test_apply_is_one_transaction(tracker, staff_client, monkeypatch):
    issue = make_conflicts(tracker)
    real = issue_services.conflict_resolve
    calls = []

    def second_fails(**kwargs):
        calls.append(kwargs["conflict"].field)
        if len(calls) == 2:
            raise IssueServiceError("the tracker connection is inbound only")
        return real(**kwargs)

    monkeypatch.setattr("issues.admin.conflict_resolve", second_fails)
    response = _post(staff_client, issue, title="local_wins", body="remote_wins")
    assert response.status_code == 200
    assert (
        "Nothing was changed: the tracker connection is inbound only" in response.content.decode()
    )
    assert len(calls) == 2
    assert open_fields(issue) == {"title", "body", "milestone"}
    assert Issue.objects.get(pk=issue.pk).title == "Crash on save (remote)"


def test_a_page_gone_stale_is_refused(tracker, staff_client):
    issue = make_conflicts(tracker)
    stale = {"shown": ",".join(str(c.pk) for c in issue.conflicts.all())}
    title = issue.conflicts.get(field="title")
    issue_services.conflict_resolve(conflict=title, strategy="remote_wins")  # someone else
    body = issue.conflicts.get(field="body")
    response = staff_client.post(resolve_url(body), {**stale, f"choice_{body.pk}": "local_wins"})
    assert response.status_code == 200
    assert "changed since the page was loaded" in response.content.decode()
    assert open_fields(issue) == {"body", "milestone"}


def test_anonymous_and_non_staff_are_sent_to_the_login(tracker):
    issue = make_conflicts(tracker)
    url = resolve_url(issue)
    response = Client().get(url)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    from django.contrib.auth import get_user_model

    plain = Client()
    plain.force_login(get_user_model().objects.create_user("plain", "", PASSWORD))
    for response in (plain.get(url), plain.post(url, {"shown": "1"})):
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert open_fields(issue) == {"title", "body", "milestone"}


def test_staff_without_the_change_permission_get_403(tracker):
    issue = make_conflicts(tracker)
    viewer = Client()
    viewer.force_login(staff_with("issues.view_conflict"))
    assert viewer.get(resolve_url(issue)).status_code == 403
    assert _post(viewer, issue, title="local_wins").status_code == 403
    assert open_fields(issue) == {"title", "body", "milestone"}


def test_csrf_is_enforced(tracker, superuser):
    issue = make_conflicts(tracker)
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    url = resolve_url(issue)
    title = issue.conflicts.get(field="title")
    data = {
        "shown": ",".join(str(c.pk) for c in issue.conflicts.filter(resolved=False)),
        f"choice_{title.pk}": "local_wins",
    }
    assert client.post(url, data).status_code == 403
    assert open_fields(issue) == {"title", "body", "milestone"}
    page = client.get(url).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert client.post(url, {**data, "csrfmiddlewaretoken": token}).status_code == 302
    assert open_fields(issue) == {"body", "milestone"}


def test_the_issue_page_links_to_the_resolution(tracker, staff_client):
    issue = make_conflicts(tracker)
    html = staff_client.get(f"/admin/issues/issue/{issue.pk}/change/").content.decode()
    assert "Title, Description, Milestone" in html and resolve_url(issue) in html
