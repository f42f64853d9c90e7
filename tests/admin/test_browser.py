"""A person resolves a conflict in a real browser: headless Chromium (Debian's) driven by
Playwright against the live admin, with a FakeGitea on loopback as the tracker.

Screenshots go to var/screenshots/ (git-ignored): every admin page, at a 1400 px window. No ORM call happens while the browser runs:
Playwright's sync API drives an event loop in this thread, where Django refuses ORM calls.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from integrations.models import Connection
from issues.models import Conflict, Issue
from issues.outbox import drain
from tests.admin.conftest import PASSWORD, make_conflicts, start_tracker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
MERGED_BODY = "Steps:\n1. open a file\n2. save\n3. crash"


def _resolve_in_browser(base_url: str, conflict_id: int) -> dict[str, str]:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
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


# --- a person connects a tracker from the admin alone ----------------------------------------

ADMIN_PAGES = (
    "/admin/",
    "/admin/integrations/connection/",
    "/admin/integrations/connection/add/",
    "/admin/integrations/webhookdelivery/",
    "/admin/issues/issue/",
    "/admin/issues/conflict/?status=all",
    "/admin/issues/outboxentry/",
    "/admin/issues/synclog/",
    "/admin/issues/syncrun/",
    "/admin/issues/apitoken/",
    "/admin/issues/apitoken/add/",
    "/admin/notifications/event/",
    "/admin/auth/user/",
    "/admin/django_celery_beat/periodictask/",
    "/",
)


def _login(page, base_url: str) -> None:
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


def _connect_in_browser(base_url: str, fake) -> dict[str, str]:
    """Add the connection, test it, register its webhook, sync it, watch a tracker edit arrive by webhook, edit
    an issue in the admin; then a screenshot of every admin page."""
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    seen: dict[str, str] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(15_000)
            _login(page, base_url)
            page.goto(f"{base_url}/admin/integrations/connection/add/")
            page.fill("#id_name", "acme")
            page.select_option("#id_provider", "gitea")
            page.fill("#id_base_url", fake.url)
            page.fill("#id_repository", "acme/widgets")
            page.fill("#id_api_token", "gitea-token")
            page.click("#sx-generate-secret")
            seen["secret"] = page.input_value("#id_webhook_secret")
            seen["intervals"] = page.input_value("#id_poll_interval_seconds")
            page.screenshot(path=str(ARTIFACTS / "connect-1-add.png"), full_page=True)
            page.click("input[name=_continue]")
            expect(page.locator("ul.messagelist li.success")).to_be_visible()
            seen["saved_messages"] = page.locator("ul.messagelist").inner_text()
            match = re.search(r"/connection/(\d+)/change/", page.url)
            assert match, page.url
            connection_id = match.group(1)
            hook_url = page.locator("#sx-webhook-url").inner_text()
            seen["hook_url"] = hook_url
            seen["guide"] = page.locator("#sx-hook-guide").inner_text()
            seen["connection_id"] = connection_id
            page.screenshot(path=str(ARTIFACTS / "connect-2-saved.png"), full_page=True)

            page.click("button:has-text('Test connection')")
            seen["tested"] = page.locator("ul.messagelist").inner_text()
            # The tracker's hook, made through its API: no form to fill in on the tracker.
            page.click("button:has-text('Register webhook')")
            expect(page.locator("ul.messagelist li.success")).to_contain_text("webhook created")
            seen["registered"] = page.locator("ul.messagelist").inner_text()
            page.screenshot(path=str(ARTIFACTS / "connect-2b-webhook.png"), full_page=True)
            page.click("button:has-text('Sync now')")
            expect(page.locator("ul.messagelist li.success")).to_contain_text("Sync queued")
            page.goto(f"{base_url}/admin/issues/issue/?q=Login")
            seen["synced"] = page.locator("#result_list").inner_text()

            fake.edit_issue(1, title="Login fails on Safari (edited in the tracker)", notify=True)
            fake.drain_webhooks()
            page.goto(f"{base_url}/admin/issues/issue/?q=Safari")
            seen["arrived"] = page.locator("#result_list").inner_text()
            page.screenshot(path=str(ARTIFACTS / "connect-3-arrived.png"), full_page=True)

            page.locator("#result_list a", has_text="Safari").first.click()
            page.fill("#id_title", "Login fails on Safari and Firefox")
            page.fill("#id_labels", "bug, feature")
            page.screenshot(path=str(ARTIFACTS / "connect-4-edit.png"), full_page=True)
            page.click("input[name=_save]")
            seen["edited"] = page.locator("ul.messagelist").inner_text()

            # A token made in the admin, and "Try it out" in the API docs authorized with it.
            page.goto(f"{base_url}/admin/issues/apitoken/add/")
            page.select_option("#id_user", label="root")
            page.fill("#id_name", "docs")
            page.check("#id_all_connections")
            page.click("input[name=_save]")
            key = page.locator("#sx-token-key").inner_text().strip()
            page.screenshot(path=str(ARTIFACTS / "token-created.png"), full_page=True)
            page.click("#sx-try-api")
            page.wait_for_function(
                "() => { try { return !!ui.authSelectors.authorized().toJS().tokenAuth } "
                "catch (e) { return false } }"
            )
            authorized = page.evaluate("() => ui.authSelectors.authorized().toJS().tokenAuth.value")
            seen["docs_authorized"] = str(authorized == key)
            seen["docs_url"] = page.url
            answer = page.evaluate(
                "async (key) => (await fetch('/api/v1/sync/status/', "
                "{headers: {Authorization: 'Bearer ' + key}})).status",
                key,
            )
            seen["docs_status"] = str(answer)
            page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=False)

            for index, path in enumerate(ADMIN_PAGES):
                page.goto(f"{base_url}{path}")
                name = path.strip("/").replace("/", "-").split("?")[0] or "root"
                page.screenshot(
                    path=str(ARTIFACTS / f"page-{index:02d}-{name}.png"), full_page=True
                )
                if path == "/admin/issues/synclog/":
                    seen["synclog_header"] = page.locator("#result_list thead").inner_text()
                    box = page.locator("#result_list th.column-trigger").bounding_box()
                    seen["trigger_right"] = str(box["x"] + box["width"]) if box else "missing"
                if path == "/":
                    seen["root"] = page.content()
        finally:
            browser.close()
    return seen


def test_a_person_connects_a_tracker_and_edits_an_issue_from_the_admin_alone(
    live_server, monkeypatch, settings
):
    from integrations.fake_trackers.gitea import FakeGitea

    settings.PUBLIC_URL = live_server.url

    get_user_model().objects.create_superuser("root", "", PASSWORD)
    # The worker's tasks run in the web thread that queues them (no broker in this test).
    monkeypatch.setattr(
        "syndarix_sync.queueing.publish",
        lambda task, *args, **kwargs: task.apply(args=args, kwargs=kwargs) is not None,
    )
    fake = FakeGitea(repository="acme/widgets", token="gitea-token").start()
    try:
        fake.seed_issue(title="Login fails on Safari", labels=["bug"])
        fake.seed_issue(title="Docs typo", labels=["docs"])

        seen = _connect_in_browser(live_server.url, fake)

        assert seen["intervals"] == "5m"
        assert "connection test failed" not in seen["saved_messages"]
        assert seen["hook_url"].startswith(live_server.url + "/webhooks/gitea/")
        assert "Issues, Issue Assigned" in seen["guide"] and "application/json" in seen["guide"]
        assert "Connected" in seen["tested"]
        # Registered by the button: the tracker's only hook posts to us, with the secret
        # generated on the form (the fake delivers to its registered hook, nowhere else).
        assert "webhook created" in seen["registered"]
        [hook] = fake.hooks.values()
        assert hook.url == f"{live_server.url}/webhooks/gitea/{seen['connection_id']}/"
        assert hook.active and hook.secret == seen["secret"] and hook.content_type == "json"
        assert "Login fails on Safari" in seen["synced"]
        assert "edited in the tracker" in seen["arrived"]
        assert "changed successfully" in seen["edited"]
        assert fake.issues[1].title == "Login fails on Safari and Firefox"
        assert sorted(fake.issues[1].labels) == ["bug", "feature"]
        for column in ("Direction", "Action", "Trigger"):
            assert column.upper() in seen["synclog_header"].upper()
        assert seen["trigger_right"] != "missing" and float(seen["trigger_right"]) <= 1400
        assert "Syndarix Sync" in seen["root"] and "Page not found" not in seen["root"]
        assert seen["docs_authorized"] == "True" and "#key=" not in seen["docs_url"]
        assert seen["docs_status"] == "200"
        issue = Issue.objects.get(external_number="1")
        assert issue.title == "Login fails on Safari and Firefox" and issue.sync_status == "synced"
        assert Connection.objects.get(name="acme").last_webhook_at is not None
    finally:
        fake.stop()
