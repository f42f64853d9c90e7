"""A person resolves a conflict in a real browser: headless Chromium (Debian's) driven by
Playwright against the live admin, with a FakeGitea on loopback as the tracker.

Screenshots go to test-artifacts/ (git-ignored). No ORM call happens while the browser runs:
Playwright's sync API drives an event loop in this thread, where Django refuses ORM calls.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from issues.models import Conflict
from issues.outbox import drain
from tests.admin.conftest import PASSWORD, make_conflicts, start_tracker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
MERGED_BODY = "Steps:\n1. open a file\n2. save\n3. crash"


def _resolve_in_browser(base_url: str, conflict_id: int) -> dict[str, str]:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    seen: dict[str, str] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(15_000)

            page.goto(f"{base_url}/admin/")
            expect(page).to_have_url(f"{base_url}/admin/login/?next=/admin/")
            page.fill("#id_username", "root")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            dashboard = page.locator("#sync-dashboard")
            expect(dashboard).to_be_visible()
            seen["open_conflicts"] = (
                dashboard.locator("td[data-col=open_conflicts]").inner_text().strip()
            )
            page.screenshot(path=str(ARTIFACTS / "browser-1-dashboard.png"), full_page=True)

            dashboard.locator("td[data-col=open_conflicts] a").click()
            expect(page.locator("#result_list")).to_be_visible()
            seen["listed"] = str(page.locator("#result_list tbody tr").count())
            page.screenshot(path=str(ARTIFACTS / "browser-2-conflicts.png"), full_page=True)

            page.locator(f"a[href='/admin/issues/conflict/{conflict_id}/resolve/']").click()
            title = page.locator("#conflict-title")
            expect(title).to_be_visible()
            seen["base"] = title.locator("td[data-side=base]").inner_text().strip()
            seen["local"] = title.locator("td[data-side=local] ins").inner_text().strip()
            seen["remote"] = title.locator("td[data-side=remote] ins").inner_text().strip()
            page.screenshot(path=str(ARTIFACTS / "browser-3-resolve.png"), full_page=True)

            title.get_by_label("Take the local value").check()
            body = page.locator("#conflict-body")
            body.get_by_label("Use this merged value:").check()
            body.locator("textarea").fill(MERGED_BODY)
            page.locator("#conflict-milestone").get_by_label(
                "Keep the tracker's value (remote)"
            ).check()
            page.screenshot(path=str(ARTIFACTS / "browser-4-choices.png"), full_page=True)
            page.click("input[name=apply]")

            success = page.locator("ul.messagelist li.success")
            expect(success).to_contain_text("Resolved 3 conflicts")
            seen["message"] = success.inner_text()
            expect(page.locator("#resolved-conflicts")).to_be_visible()
            seen["after"] = page.locator("#content-main").inner_text()
            page.screenshot(path=str(ARTIFACTS / "browser-5-resolved.png"), full_page=True)
        finally:
            browser.close()
    return seen


def test_a_person_resolves_a_conflict_in_the_browser_and_the_tracker_gets_it(
    live_server, published
):
    user = get_user_model().objects.create_superuser("root", "", PASSWORD)
    tracker = start_tracker()
    try:
        issue = make_conflicts(tracker)
        number = int(issue.external_number)
        first = issue.conflicts.order_by("id").first()

        seen = _resolve_in_browser(live_server.url, first.pk)

        assert seen["open_conflicts"] == "3" and seen["listed"] == "3"
        assert seen["base"] == "Crash on save"
        assert (seen["local"], seen["remote"]) == ("(local)", "(remote)")
        assert (
            "Title (local wins), Description (merged value), Milestone (remote wins)"
            in seen["message"]
        )
        assert "No open conflicts on this issue." in seen["after"]

        for conflict in Conflict.objects.filter(issue=issue):
            assert conflict.resolved and conflict.resolved_by == user
        report = drain()
        assert report.pushed == 1 and report.failed == 0
        tracker.deliver_all()  # the echo of our push changes nothing
        remote = tracker.fake.issues[number]
        assert remote.title == "Crash on save (local)"
        assert remote.body == MERGED_BODY
        assert remote.milestone is None
        issue.refresh_from_db()
        assert (issue.title, issue.body, issue.milestone, issue.sync_status) == (
            "Crash on save (local)",
            MERGED_BODY,
            None,
            "synced",
        )
        assert any(name == "issues.tasks.push_issue_to_external" for name, _ in published)
    finally:
        tracker.fake.stop()
