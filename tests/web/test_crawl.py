"""A crawl of the whole app as each kind of visitor: every GET route with every notice the
pages know and with odd query values, then every form and JSON route sent empty and with
garbage. Nothing answers 5xx (security invariant 9: bad input gets a clear 4xx, never a 500).

The routes are read from the app itself, so a route added later is crawled without a change here.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute, _IncludedRouter

from tests.support.base import sign_in
from tests.support.practice_admin import setup_path
from tests.support.recovery import add_email_method
from tests.web.support import browser
from twofold.context import RequestContext
from twofold.web.rendering import NOTICES, PRACTICE_NOTICES

ROLES = ["signed_out", "member_without_2fa", "member_with_2fa", "staff", "provider", "admin"]

NOTICE_KEYS = sorted({*NOTICES, *PRACTICE_NOTICES, "", "no-such-notice", "<script>", "../../etc"})
ODD_QUERIES = [
    {"next": "//evil.example"},
    {"next": "/\t/evil.example"},
    {"next": "x" * 600},
    {"q": "%" * 50, "show": "nonsense", "role": "root", "page": "0"},
    {"page": "-1"},
    {"page": "99999999999999999999"},
    {"page": "abc"},
    {"since": "yesterday", "until": "2024-13-45"},
    {"since": "2024-01-01", "until": "1999-01-01"},
    {"person": "x" * 400, "event": "practice:" + "x" * 100},
    {"include_current": "maybe"},
    {"active": "perhaps"},
]
GARBAGE_FORM = {
    "email": "not an email",
    "password": "garbage",
    "code": "x" * 64,
    "method": "carrier-pigeon",
    "next": "//evil.example",
    "current_password": "garbage",
    "new_password": "short",
    "new_password_confirm": "other",
    "enrollment_id": "nope",
    "remember_browser": "sometimes",
    "role": "root",
    "active": "perhaps",
    "reason": "x" * 2000,
    "saved": "no",
    "action": "explode",
    "grace_days": "-1",
    "remember_browser_days": "many",
    "idle_timeout_minutes": "1e9",
    "shared_workstation_idle_minutes": "-2",
    "required_roles": "root",
    "allowed_methods": "carrier-pigeon",
    "name": "",
    "password_again": "different",
    "send_setup_links": "perhaps",
}
GARBAGE_JSON = [None, {}, [], "text", {"code": 123, "password": None, "unexpected": True}, {"x" * 100: "y" * 1000}]


def all_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route, in the order the app tries them."""
    found: list[tuple[str, str]] = []

    def walk(routes):
        for route in routes:
            if isinstance(route, _IncludedRouter):
                walk(route.effective_candidates())
                continue
            original = getattr(route, "original_route", route)
            if isinstance(original, APIRoute):
                found.extend((method, route.path) for method in sorted(original.methods))

    walk(app.routes)
    return found


def fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


@pytest.fixture
def crawl(app, services, make_user, make_practice, clock, mailbox):
    """Everything the crawl needs: a practice with one of each kind of member, ids and tokens to fill paths with."""
    admin = make_user(role="admin", with_totp=True)
    members = {
        "member_without_2fa": make_user(role="provider"),
        "member_with_2fa": make_user(role="provider", with_totp=True),
        "staff": make_user(role="staff", with_totp=True),
        "provider": make_user(role="provider", with_totp=True),
        "admin": admin,
    }
    elsewhere = make_user(role="staff", with_totp=True, practice_id=make_practice("Elsewhere").id)
    newcomer = services.members.add_member(
        practice_id=admin.practice_id,
        actor_id=admin.id,
        email="newcomer@riverside.example",
        name="Newcomer",
        role="staff",
        context=RequestContext(),
        link_base="http://127.0.0.1",
    )
    [invite] = mailbox.wait_for(1, to="newcomer@riverside.example")
    with browser(app) as anonymous:
        flow_id = anonymous.post(
            "/api/v1/sign-in", json={"email": members["provider"].email, "password": members["provider"].password}
        ).json()["flow_id"]
    return {
        "members": members,
        "ids": ["1", str(newcomer.id), str(elsewhere.id), "999999", "0", "-1", "abc", "9" * 30],
        "flow_ids": [flow_id, "no-such-flow", "x" * 300],
        "tokens": [setup_path(invite).rsplit("/", 1)[1], "no-such-token", "x" * 300],
    }


def signed_in_as(app, role: str, crawl, clock, mailbox):
    client = browser(app)
    page = client.__enter__()
    if role != "signed_out":
        member = crawl["members"][role]
        assert sign_in(page, member, clock if member.totp_key else None).status_code == 200
        clock.advance(seconds=30)
        if role == "member_with_2fa":
            add_email_method(page, mailbox, member, clock)  # the Security page's email sections, filled
    return client, page


def paths_for(path: str, crawl) -> list[str]:
    names = re.findall(r"\{(\w+)\}", path)
    if not names:
        return [path]
    choices = {"flow_id": crawl["flow_ids"], "token": crawl["tokens"]}
    return [
        fill(path, {name: choices.get(name, crawl["ids"])[i % len(choices.get(name, crawl["ids"]))] for name in names})
        for i in range(max(len(choices.get(name, crawl["ids"])) for name in names))
    ]


@pytest.mark.parametrize("role", ROLES)
def test_no_page_answers_a_server_error(app, crawl, clock, mailbox, role):
    client, page = signed_in_as(app, role, crawl, clock, mailbox)
    failures, requests = [], 0
    try:
        for method, path in all_routes(app):
            if method != "GET" or path in ("/api/docs", "/docs/oauth2-redirect"):
                continue
            for url in paths_for(path, crawl):
                for query in [{"notice": key} for key in NOTICE_KEYS] + ODD_QUERIES:
                    response = page.get(url, params=query, follow_redirects=False)
                    requests += 1
                    if response.status_code >= 500:
                        failures.append(f"GET {url}?{query} -> {response.status_code}")
    finally:
        client.__exit__(None, None, None)
    assert requests > 500
    assert failures == []


@pytest.mark.parametrize("role", ROLES)
def test_no_form_or_json_route_answers_a_server_error_to_empty_or_garbage_bodies(app, crawl, clock, mailbox, role):
    client, page = signed_in_as(app, role, crawl, clock, mailbox)
    failures, requests = [], 0
    member = crawl["members"].get(role)
    try:
        for method, path in all_routes(app):
            if method in ("GET", "HEAD"):
                continue
            for url in paths_for(path, crawl):
                if url.startswith("/api/"):
                    bodies = [{"json": body} for body in GARBAGE_JSON] + [{"content": b"\xff\xfe garbage"}]
                else:
                    bodies = [{}, {"data": GARBAGE_FORM}, {"content": b"\xff\xfe=&&==%%"}]
                for body in bodies:
                    response = page.request(method, url, follow_redirects=False, **body)
                    requests += 1
                    if response.status_code >= 500:
                        failures.append(f"{method} {url} {str(body)[:60]} -> {response.status_code}")
                    if member is not None and page.get("/api/v1/me").status_code == 401:
                        # That request signed this browser out (sign-out, "end all"): sign in again.
                        clock.advance(seconds=30)
                        sign_in(page, member, clock if member.totp_key else None)
                        clock.advance(seconds=30)
    finally:
        client.__exit__(None, None, None)
    assert requests > 200
    assert failures == []
