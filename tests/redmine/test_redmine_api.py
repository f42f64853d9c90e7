"""What a real Redmine 5.0 answers, pinned at HTTP level (plain `requests`, no provider).

These are the facts the provider and the fake (integrations/fake_trackers/redmine.py) are
built on (../shared/REDMINE.md). If a Redmine upgrade changes one, this module says which.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.redmine.server import OUTSIDER, RedmineProject

pytestmark = [pytest.mark.redmine, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def api(redmine_project: RedmineProject) -> requests.Session:
    return redmine_project.server.session()


def url(project: RedmineProject, path: str) -> str:
    return f"{project.url}{path}"


def create(api: requests.Session, project: RedmineProject, **fields: Any) -> dict[str, Any]:
    fields.setdefault("subject", "an issue")
    response = api.post(
        url(project, "/issues.json"),
        json={"issue": {"project_id": project.identifier, **fields}},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return dict(response.json()["issue"])


def get(api: requests.Session, project: RedmineProject, issue_id: int, **params: str) -> Any:
    response = api.get(url(project, f"/issues/{issue_id}.json"), params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["issue"]


def put(api: requests.Session, project: RedmineProject, issue_id: int, **fields: Any) -> Any:
    return api.put(url(project, f"/issues/{issue_id}.json"), json={"issue": fields}, timeout=30)


def listing(api: requests.Session, project: RedmineProject, **params: Any) -> Any:
    params = {"project_id": project.identifier, **params}
    response = api.get(url(project, "/issues.json"), params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def labels_of(issue: dict[str, Any], project: RedmineProject) -> list[str]:
    field = project.server.labels_field_id
    return next(f["value"] for f in issue["custom_fields"] if f["id"] == field)


def parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def show(stamp: datetime) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_create_answers_201_with_the_issue_ignoring_status_and_storing_crlf(
    api: requests.Session, redmine_project: RedmineProject
) -> None:
    server = redmine_project.server
    response = api.post(
        url(redmine_project, "/issues.json"),
        json={
            "issue": {
                "project_id": redmine_project.identifier,
                "subject": "created",
                "description": "one\ntwo\rthree\r\n",
                "status_id": server.status_id("Closed"),
                "assigned_to_id": server.users["alice"],
                "fixed_version_id": redmine_project.versions["v1"],
                "custom_fields": [{"id": server.labels_field_id, "value": ["docs", "bug"]}],
            }
        },
        timeout=30,
    )
    assert response.status_code == 201
    issue = response.json()["issue"]
    assert response.headers["Location"] == f"{redmine_project.url}/issues/{issue['id']}"
    assert issue["status"] == {"id": server.status_id("New"), "name": "New", "is_closed": False}
    assert issue["description"] == "one\r\ntwo\r\nthree\r\n"
    assert issue["assigned_to"]["id"] == server.users["alice"]
    assert issue["fixed_version"] == {"id": redmine_project.versions["v1"], "name": "v1"}
    # The values come back as sent (stored rows in insertion order), not sorted.
    assert labels_of(issue, redmine_project) == ["docs", "bug"]
    assert issue["created_on"] == issue["updated_on"]
    assert issue["closed_on"] is None
    # Without a description Redmine keeps null, not "".
    assert create(api, redmine_project, subject="bare")["description"] is None


def test_put_answers_204_without_body_and_every_put_bumps_updated_on(
    api: requests.Session, redmine_project: RedmineProject
) -> None:
    issue = create(api, redmine_project, subject="same")
    time.sleep(1.1)
    response = put(api, redmine_project, issue["id"], subject="same")
    assert response.status_code == 204
    assert response.content == b""
    after = get(api, redmine_project, issue["id"], include="journals")
    # Nothing changed, yet updated_on moved (a no-op write echoes), and no journal was written.
    assert parse(after["updated_on"]) > parse(issue["updated_on"])
    assert after["journals"] == []
    # A body without the `issue` wrapper is accepted and changes nothing but updated_on.
    wrapped = api.put(url(redmine_project, f"/issues/{issue['id']}.json"), json={"subject": "x"})
    assert wrapped.status_code == 204
    assert get(api, redmine_project, issue["id"])["subject"] == "same"


def test_status_writes_unknown_ids_are_silently_ignored_and_reopen_works_for_admin(
    api: requests.Session, redmine_project: RedmineProject
) -> None:
    server = redmine_project.server
    issue = create(api, redmine_project)
    assert put(api, redmine_project, issue["id"], status_id=99999).status_code == 204
    assert get(api, redmine_project, issue["id"])["status"]["name"] == "New"
    assert put(api, redmine_project, issue["id"], status_id=server.status_id("Closed")).ok
    closed = get(api, redmine_project, issue["id"])
    assert closed["status"]["is_closed"] is True
    assert closed["closed_on"] is not None
    assert put(api, redmine_project, issue["id"], status_id=server.status_id("New")).ok
    reopened = get(api, redmine_project, issue["id"])
    assert reopened["status"]["name"] == "New"
    assert reopened["closed_on"] == closed["closed_on"]  # the last close stays


def test_validation_errors_are_422_with_an_errors_list(
    api: requests.Session, redmine_project: RedmineProject
) -> None:
    server = redmine_project.server
    issue = create(api, redmine_project)
    outsider = put(api, redmine_project, issue["id"], assigned_to_id=server.users[OUTSIDER])
    assert outsider.status_code == 422
    assert outsider.json() == {"errors": ["Assignee is invalid"]}
    label = put(
        api,
        redmine_project,
        issue["id"],
        custom_fields=[{"id": server.labels_field_id, "value": ["bug", "not-a-label"]}],
    )
    assert label.status_code == 422
    assert label.json() == {"errors": ["Labels is not included in the list"]}
    version = put(api, redmine_project, issue["id"], fixed_version_id=987654)
    assert version.json() == {"errors": ["Target version is not included in the list"]}
    blank = put(api, redmine_project, issue["id"], subject="")
    assert blank.json() == {"errors": ["Subject cannot be blank"]}
    # On create, every refused field is named at once.
    both = api.post(
        url(redmine_project, "/issues.json"),
        json={
            "issue": {
                "project_id": redmine_project.identifier,
                "subject": "refused",
                "assigned_to_id": server.users[OUTSIDER],
                "custom_fields": [{"id": server.labels_field_id, "value": ["nope"]}],
            }
        },
        timeout=30,
    )
    assert both.status_code == 422
    assert sorted(both.json()["errors"]) == [
        "Assignee is invalid",
        "Labels is not included in the list",
    ]
    # Malformed JSON: a bare 400 (text/html, empty), not an errors list.
    bad = api.post(
        url(redmine_project, "/issues.json"),
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert bad.status_code == 400
    assert bad.content == b""


def test_delete_is_204_then_404_and_gone_from_listings(
    api: requests.Session, redmine_project: RedmineProject
) -> None:
    issue = create(api, redmine_project, subject="doomed")
    response = api.delete(url(redmine_project, f"/issues/{issue['id']}.json"), timeout=30)
    assert response.status_code == 204
    assert response.content == b""
    again = api.get(url(redmine_project, f"/issues/{issue['id']}.json"), timeout=30)
    assert again.status_code == 404
    assert again.content == b""
    assert api.delete(url(redmine_project, f"/issues/{issue['id']}.json")).status_code == 404
    ids = [i["id"] for i in listing(api, redmine_project, status_id="*", limit=100)["issues"]]
    assert issue["id"] not in ids


def test_listing_status_filter_paging_cap_and_sort(
    api: requests.Session, redmine_project: RedmineProject
) -> None:
    server = redmine_project.server
    first = create(api, redmine_project, subject="list one")
    second = create(api, redmine_project, subject="list two")
    put(api, redmine_project, first["id"], status_id=server.status_id("Rejected"))
    open_ids = {i["id"] for i in listing(api, redmine_project, limit=100)["issues"]}
    all_ids = {i["id"] for i in listing(api, redmine_project, status_id="*", limit=100)["issues"]}
    closed_ids = {
        i["id"] for i in listing(api, redmine_project, status_id="closed", limit=100)["issues"]
    }
    assert first["id"] not in open_ids  # without status_id=* only open issues are listed
    assert {first["id"], second["id"]} <= all_ids
    assert first["id"] in closed_ids
    assert all_ids == open_ids | closed_ids

    capped = listing(api, redmine_project, status_id="*", limit=1000)
    assert capped["limit"] == 100
    assert capped["offset"] == 0
    assert capped["total_count"] == len(all_ids)
    assert listing(api, redmine_project, limit=0)["limit"] == 25  # not a valid limit: default
    page = listing(api, redmine_project, status_id="*", limit=1, offset=1, sort="id")
    assert (page["limit"], page["offset"], len(page["issues"])) == (1, 1, 1)
    assert page["issues"][0]["id"] == sorted(all_ids)[1]
    beyond = listing(api, redmine_project, status_id="*", offset=10_000)
    assert beyond["issues"] == []
    assert beyond["total_count"] == len(all_ids)

    # sort=updated_on,id: an edit moves an issue to the end.
    time.sleep(1.1)
    put(api, redmine_project, second["id"], subject="list two, edited")
    ordered = listing(api, redmine_project, status_id="*", sort="updated_on,id", limit=100)
    stamps = [(i["updated_on"], i["id"]) for i in ordered["issues"]]
    assert stamps == sorted(stamps)
    assert ordered["issues"][-1]["id"] == second["id"]


def test_updated_on_filter_means_later_than_t_minus_one_second(
    api: requests.Session, redmine_project: RedmineProject
) -> None:
    issue = create(api, redmine_project, subject="cursor")
    stamp = parse(issue["updated_on"])

    def ids(bound: datetime) -> set[int]:
        found = listing(
            api, redmine_project, status_id="*", updated_on=f">={show(bound)}", limit=100
        )
        return {i["id"] for i in found["issues"]}

    assert issue["id"] in ids(stamp)
    # Shown to the second, stored with microseconds, compared as "> bound - 1 s": the issue
    # updated at T (plus some µs) still matches >=T+1s, and no longer matches >=T+2s.
    assert issue["id"] in ids(stamp + timedelta(seconds=1))
    assert issue["id"] not in ids(stamp + timedelta(seconds=2))
    bad = api.get(
        url(redmine_project, "/issues.json"),
        params={"project_id": redmine_project.identifier, "updated_on": ">=yesterday"},
        timeout=30,
    )
    assert bad.status_code == 422
    assert bad.json() == {"errors": ["Updated is invalid"]}


def test_weak_etag_and_if_none_match_304(
    api: requests.Session, redmine_project: RedmineProject
) -> None:
    issue = create(api, redmine_project, subject="etag")
    path = url(redmine_project, f"/issues/{issue['id']}.json")
    first = api.get(path, timeout=30)
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    assert "Last-Modified" not in first.headers
    cached = api.get(path, headers={"If-None-Match": etag}, timeout=30)
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["ETag"] == etag
    put(api, redmine_project, issue["id"], subject="etag, changed")
    changed = api.get(path, headers={"If-None-Match": etag}, timeout=30)
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    # Lists too.
    params = {"project_id": redmine_project.identifier, "status_id": "*", "limit": 100}
    listed = api.get(url(redmine_project, "/issues.json"), params=params, timeout=30)
    again = api.get(
        url(redmine_project, "/issues.json"),
        params=params,
        headers={"If-None-Match": listed.headers["ETag"]},
        timeout=30,
    )
    assert again.status_code == 304


def test_bad_or_missing_api_key_is_401_with_login_required(
    redmine_project: RedmineProject,
) -> None:
    path = url(redmine_project, f"/issues.json?project_id={redmine_project.identifier}")
    for headers in ({"X-Redmine-API-Key": "0" * 40}, {}):
        response = requests.get(path, headers=headers, timeout=30)
        assert response.status_code == 401
        assert response.content == b""
    # A session cookie from an earlier good answer does not make a bad key pass.
    session = redmine_project.server.session()
    assert session.get(path, timeout=30).status_code == 200
    session.headers["X-Redmine-API-Key"] = "0" * 40
    assert session.get(path, timeout=30).status_code == 401
    assert requests.get(path, params={"key": redmine_project.api_key}, timeout=30).ok


def test_unknown_project_and_issue_are_empty_404s(
    api: requests.Session, redmine_project: RedmineProject
) -> None:
    for path in ("/issues.json?project_id=no-such-project", "/issues/987654321.json"):
        response = api.get(url(redmine_project, path), timeout=30)
        assert response.status_code == 404
        assert response.content == b""


def test_label_values_keep_their_insertion_order(
    api: requests.Session, redmine_project: RedmineProject
) -> None:
    field = redmine_project.server.labels_field_id
    issue = create(
        api,
        redmine_project,
        custom_fields=[{"id": field, "value": ["wontfix", "docs", "bug", "docs"]}],
    )
    assert labels_of(issue, redmine_project) == ["wontfix", "docs", "bug"]
    put(
        api,
        redmine_project,
        issue["id"],
        custom_fields=[{"id": field, "value": ["feature", "wontfix", "bug"]}],
    )
    # Kept values stay where they were, new ones follow in the order sent.
    assert labels_of(get(api, redmine_project, issue["id"]), redmine_project) == [
        "wontfix",
        "bug",
        "feature",
    ]


def test_journals_hold_notes_and_old_new_values(
    api: requests.Session, redmine_project: RedmineProject
) -> None:
    server = redmine_project.server
    issue = create(api, redmine_project, subject="history")
    put(
        api,
        redmine_project,
        issue["id"],
        subject="history, renamed",
        notes="a note",
        custom_fields=[{"id": server.labels_field_id, "value": ["bug"]}],
    )
    journals = get(api, redmine_project, issue["id"], include="journals")["journals"]
    assert len(journals) == 1
    assert journals[0]["notes"] == "a note"
    assert {
        "property": "attr",
        "name": "subject",
        "old_value": "history",
        "new_value": "history, renamed",
    } in journals[0]["details"]
    assert {
        "property": "cf",
        "name": str(server.labels_field_id),
        "old_value": None,
        "new_value": "bug",
    } in journals[0]["details"]


def test_answers_carry_no_date_header(
    api: requests.Session, redmine_project: RedmineProject
) -> None:
    # thin (as Debian runs Redmine here) sends no Date: a cursor on the tracker's clock must come
    # from the issues' own updated_on, not from a response header.
    response = api.get(url(redmine_project, "/issues.json"), timeout=30)
    assert response.status_code == 200
    assert "Date" not in response.headers
