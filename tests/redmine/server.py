"""A real Redmine for the tests: started (or reused) through `scripts/redmine-test-server`.

`obtain()` runs the script once per test session; `make_project()` gives each test module a
fresh project through REST as the admin (issue tracking, versions, assignable members and the
global "Labels" field the script created: custom fields cannot be created through REST).
A server elsewhere can be used instead with REDMINE_URL and REDMINE_API_KEY set (its admin key;
the users and the Labels field must exist as the script creates them).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.shared_data import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "redmine-test-server"
START_TIMEOUT = 300.0  # a first start migrates a fresh database: ~30 s on 2 busy cores
MEMBERS = ("alice", "bob", "carol")  # project members with an assignable role
OUTSIDER = "eve"  # an active user who is no member of the test projects: not assignable
VERSIONS = ("v1", "v2")
DEVELOPER_ROLE = "Developer"


@dataclasses.dataclass(frozen=True)
class RedmineServer:
    url: str
    api_key: str
    info: dict[str, Any]

    @property
    def labels_field_id(self) -> int:
        return int(self.info["labels_field_id"])

    @property
    def labels(self) -> list[str]:
        return list(self.info["labels"])

    @property
    def users(self) -> dict[str, int]:
        return {login: int(uid) for login, uid in self.info["users"].items()}

    def status_id(self, name: str) -> int:
        return next(int(s["id"]) for s in self.info["statuses"] if s["name"] == name)

    def session(self, api_key: str | None = None) -> requests.Session:
        session = requests.Session()
        session.headers["X-Redmine-API-Key"] = self.api_key if api_key is None else api_key
        return session


@dataclasses.dataclass(frozen=True)
class RedmineProject:
    server: RedmineServer
    identifier: str
    id: int
    versions: dict[str, int]

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def api_key(self) -> str:
        return self.server.api_key


class Unavailable(Exception):
    """Why no Redmine can be had here (a skip reason, or a failure under REQUIRE_SERVICES)."""


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def missing_reason() -> str | None:
    """A cheap check at collection time: None when a server is running or can be started."""
    if os.environ.get("REDMINE_URL"):
        if not os.environ.get("REDMINE_API_KEY"):
            return "REDMINE_URL set without REDMINE_API_KEY"
        parts = urlsplit(os.environ["REDMINE_URL"])
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), 2):
                return None
        except OSError as exc:
            return f"no Redmine answers at REDMINE_URL={os.environ['REDMINE_URL']}: {exc}"
    if shutil.which("bash") is None:
        return "needs bash to run scripts/redmine-test-server"
    if not Path("/usr/share/redmine/config.ru").is_file() or shutil.which("thin") is None:
        return "needs Redmine: run `scripts/redmine-test-server install` as root (Debian 12)"
    if _run("status", timeout=30).returncode == 0:
        return None
    if os.geteuid() != 0:
        return "Redmine is stopped and starting it needs root: `sudo scripts/redmine-test-server start`"
    return None


def obtain() -> RedmineServer:
    """The running server (started by the script when needed); raises `Unavailable`."""
    if os.environ.get("REDMINE_URL"):
        url = os.environ["REDMINE_URL"].rstrip("/")
        key = os.environ.get("REDMINE_API_KEY", "")
        try:
            return RedmineServer(url=url, api_key=key, info=_describe(url, key))
        except (requests.RequestException, ValueError, KeyError, StopIteration) as exc:
            raise Unavailable(f"the Redmine at {url} is unusable: {exc!r}") from exc
    reason = missing_reason()
    if reason:
        raise Unavailable(reason)
    try:
        done = _run("start", timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise Unavailable(f"Redmine did not start within {START_TIMEOUT:.0f} s") from exc
    if done.returncode != 0:
        raise Unavailable(f"Redmine did not start: {done.stderr.strip()[-800:]}")
    info = json.loads(done.stdout)
    return RedmineServer(url=info["url"], api_key=info["api_key"], info=info)


def _describe(url: str, key: str) -> dict[str, Any]:
    """What the script's server.json says, read through REST from an external server."""
    session = requests.Session()
    session.headers["X-Redmine-API-Key"] = key
    fields = session.get(f"{url}/custom_fields.json", timeout=10).json()["custom_fields"]
    labels = next(f for f in fields if f["name"] == "Labels")
    users = session.get(f"{url}/users.json", params={"limit": 100}, timeout=10).json()["users"]
    statuses = session.get(f"{url}/issue_statuses.json", timeout=10).json()["issue_statuses"]
    roles = session.get(f"{url}/roles.json", timeout=10).json()["roles"]
    return {
        "labels_field_id": labels["id"],
        "labels": [v["value"] for v in labels["possible_values"]],
        "users": {u["login"]: u["id"] for u in users},
        "statuses": statuses,
        "roles": [{**r, "assignable": True} for r in roles],
    }


def make_project(server: RedmineServer, name: str) -> RedmineProject:
    """A fresh project: issue tracking, the Labels field, versions v1/v2, assignable members."""
    session = server.session()
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:40]
    identifier = f"t-{slug}-{uuid.uuid4().hex[:8]}"
    response = session.post(
        f"{server.url}/projects.json",
        json={
            "project": {
                "name": identifier,
                "identifier": identifier,
                "is_public": False,
                "enabled_module_names": ["issue_tracking"],
                "issue_custom_field_ids": [server.labels_field_id],
            }
        },
        timeout=30,
    )
    response.raise_for_status()
    project_id = int(response.json()["project"]["id"])
    versions: dict[str, int] = {}
    for version in VERSIONS:
        answer = session.post(
            f"{server.url}/projects/{identifier}/versions.json",
            json={"version": {"name": version}},
            timeout=30,
        )
        answer.raise_for_status()
        versions[version] = int(answer.json()["version"]["id"])
    role = next(int(r["id"]) for r in server.info["roles"] if r["name"] == DEVELOPER_ROLE)
    for login in MEMBERS:
        answer = session.post(
            f"{server.url}/projects/{identifier}/memberships.json",
            json={"membership": {"user_id": server.users[login], "role_ids": [role]}},
            timeout=30,
        )
        answer.raise_for_status()
    return RedmineProject(server=server, identifier=identifier, id=project_id, versions=versions)


def drop_project(project: RedmineProject) -> None:
    """Delete the project and its issues (keeps the shared database small across sessions)."""
    session = project.server.session()
    session.delete(f"{project.url}/projects/{project.identifier}.json", timeout=120)
