"""The contract of the remembered-browser, session and password routes, on every storage backend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import PASSWORD, backends, sign_in
from twofold.store.models import AuditEvent, User
from twofold.web.app import create_app
from twofold.wiring import build_services

NEW_PASSWORD = "a completely new passphrase"
CHROME_WINDOWS = {
    "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36"
}
FIREFOX_LINUX = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}


@pytest.fixture(params=backends())
def backend(request):
    return request.param


@pytest.fixture
def third(app):
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


def events(services, name, subject_id=None):
    with services.db.reading() as s:
        rows = s.execute(select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id)).scalars().all()
    return [row for row in rows if subject_id is None or row.subject_id == subject_id]


def remembered_cookie(client, services, member) -> str | None:
    return client.cookies.get(services.remembered.cookie_name(member.id))


def password_only(client, member, password=PASSWORD, **kwargs):
    return client.post("/api/v1/sign-in", json={"email": member.email, "password": password}, **kwargs)


def fresh_step(clock):
    clock.advance(seconds=30)


# -- remembering a browser at sign-in ------------------------------------------------


def test_remember_browser_sets_its_own_cookie_matching_the_trust(client, make_user, clock):
    member = make_user(with_totp=True)
    response = sign_in(client, member, clock, remember=True)
    assert response.status_code == 200 and response.json() == {"status": "signed_in"}
    cookies = response.headers.get_list("set-cookie")
    remembered = [c for c in cookies if c.startswith("twofold_rb_")]
    assert len(remembered) == 1
    assert "HttpOnly" in remembered[0] and "SameSite=lax" in remembered[0] and "Path=/" in remembered[0]
    assert "Max-Age=2592000" in remembered[0]  # 30 days
    assert "Secure" not in remembered[0]  # plain-HTTP localhost in development


def test_the_cookie_is_secure_outside_localhost(app, make_user, clock):
    member = make_user(with_totp=True)
    with TestClient(app, base_url="https://signin.riverside.example") as secure_client:
        response = sign_in(secure_client, member, clock, remember=True)
    remembered = [c for c in response.headers.get_list("set-cookie") if c.startswith("__Host-twofold_rb_")]
    assert remembered and "Secure" in remembered[0] and "Domain" not in remembered[0]


def test_a_remembered_browser_signs_in_with_the_password_only(client, make_user, clock, services):
    member = make_user(with_totp=True)
    sign_in(client, member, clock, remember=True)
    client.post("/api/v1/sign-out")
    clock.advance(days=3)
    response = password_only(client, member)
    assert response.json() == {"status": "signed_in"}
    assert client.get("/api/v1/me").json()["email"] == member.email
    assert events(services, "account:remembered_browser:used", member.id)


def test_other_browsers_and_unremembered_sign_ins_are_asked_for_the_code(client, anonymous, make_user, clock):
    member = make_user(with_totp=True)
    sign_in(client, member, clock, remember=True)
    assert password_only(anonymous, member).json()["status"] == "second_factor_required"
    fresh_step(clock)
    assert sign_in(anonymous, member, clock).status_code == 200  # without "remember"
    anonymous.post("/api/v1/sign-out")
    assert password_only(anonymous, member).json()["status"] == "second_factor_required"


def test_remember_browser_must_be_a_boolean(client, make_user, clock):
    member = make_user(with_totp=True)
    flow = password_only(client, member).json()["flow_id"]
    response = client.post(
        f"/api/v1/sign-in/{flow}/second-factor",
        json={"method": "totp", "code": member.code(clock), "remember_browser": "yes"},
    )
    assert response.status_code == 422 and response.json()["error"] == "validation_error"


def test_a_refused_token_is_dropped_from_the_browser(client, make_user, clock, services):
    member = make_user(with_totp=True)
    sign_in(client, member, clock, remember=True)
    client.post("/api/v1/sign-out")
    name = services.remembered.cookie_name(member.id)
    client.cookies.set(name, remembered_cookie(client, services, member)[:-2] + "zz")
    response = password_only(client, member)
    assert response.json()["status"] == "second_factor_required"
    dropped = [c for c in response.headers.get_list("set-cookie") if c.startswith(name)]
    assert dropped and "Max-Age=0" in dropped[0]
    assert events(services, "account:remembered_browser:rejected", member.id)[-1].details["reason"] == "unknown"


def test_a_token_after_a_password_change_is_refused_and_audited(client, make_user, clock, services):
    member = make_user(with_totp=True)
    sign_in(client, member, clock, remember=True)
    stolen = remembered_cookie(client, services, member)
    assert (
        client.post(
            "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        ).status_code
        == 200
    )
    client.post("/api/v1/sign-out")
    client.cookies.set(services.remembered.cookie_name(member.id), stolen)
    assert password_only(client, member, NEW_PASSWORD).json()["status"] == "second_factor_required"
    rejected = events(services, "account:remembered_browser:rejected", member.id)[-1]
    assert rejected.details["reason"] == "revoked" and rejected.details["revoked_reason"] == "password_changed"


def test_another_users_token_is_refused_and_audited(client, anonymous, make_user, clock, services):
    victim, thief = make_user(with_totp=True), make_user(with_totp=True)
    sign_in(client, victim, clock, remember=True)
    anonymous.cookies.set(services.remembered.cookie_name(thief.id), remembered_cookie(client, services, victim))
    assert password_only(anonymous, thief).json()["status"] == "second_factor_required"
    assert events(services, "account:remembered_browser:rejected", thief.id)[-1].details["reason"] == "other_user"


# -- GET/DELETE /api/v1/me/remembered-browsers ----------------------------------------


def test_remembered_browsers_are_listed_with_label_times_ip_and_this_browser(
    client, anonymous, make_user, clock, services
):
    member = make_user(with_totp=True)
    sign_in(client, member, clock, remember=True)
    client.headers.update(CHROME_WINDOWS)
    fresh_step(clock)
    anonymous.headers.update(FIREFOX_LINUX)
    sign_in(anonymous, member, clock, remember=True)
    body = client.get("/api/v1/me/remembered-browsers").json()
    assert set(body) == {"remembered_browsers"}
    listed = body["remembered_browsers"]
    assert [b["label"] for b in listed] == ["Firefox on Linux", "Test client"]  # most recently used first
    assert [b["current"] for b in listed] == [False, True]
    first = listed[1]
    assert set(first) == {"id", "label", "created_at", "last_used_at", "expires_at", "ip", "last_ip", "current"}
    assert first["ip"] == "testclient" and first["expires_at"] > first["created_at"]
    assert client.get(f"/api/v1/me/remembered-browsers/{first['id']}").json() == first
    assert [b["current"] for b in anonymous.get("/api/v1/me/remembered-browsers").json()["remembered_browsers"]] == [
        True,
        False,
    ]


def test_forgetting_one_browser_asks_it_for_the_code_again(client, anonymous, make_user, clock, services):
    member = make_user(with_totp=True)
    sign_in(anonymous, member, clock, remember=True)
    fresh_step(clock)
    sign_in(client, member, clock)
    other = client.get("/api/v1/me/remembered-browsers").json()["remembered_browsers"][0]
    response = client.delete(f"/api/v1/me/remembered-browsers/{other['id']}")
    assert response.status_code == 200 and response.json() == {"status": "revoked", "count": 1, "signed_out": False}
    assert client.get("/api/v1/me/remembered-browsers").json() == {"remembered_browsers": []}
    anonymous.post("/api/v1/sign-out")
    assert password_only(anonymous, member).json()["status"] == "second_factor_required"
    revoked = events(services, "account:remembered_browser:revoked", member.id)[-1]
    assert revoked.details == {"reason": "revoked_by_user", "count": 1, "browser_ids": [other["id"]]}
    assert revoked.actor_id == member.id
    assert client.delete(f"/api/v1/me/remembered-browsers/{other['id']}").status_code == 404


def test_forgetting_this_browser_deletes_its_cookie(client, make_user, clock, services):
    member = make_user(with_totp=True)
    sign_in(client, member, clock, remember=True)
    this = client.get("/api/v1/me/remembered-browsers").json()["remembered_browsers"][0]
    response = client.delete(f"/api/v1/me/remembered-browsers/{this['id']}")
    name = services.remembered.cookie_name(member.id)
    assert any(c.startswith(name) and "Max-Age=0" in c for c in response.headers.get_list("set-cookie"))
    assert remembered_cookie(client, services, member) is None


def test_forgetting_every_browser(client, anonymous, make_user, clock, services):
    member = make_user(with_totp=True)
    sign_in(anonymous, member, clock, remember=True)
    fresh_step(clock)
    sign_in(client, member, clock, remember=True)
    response = client.delete("/api/v1/me/remembered-browsers")
    assert response.json() == {"status": "revoked", "count": 2, "signed_out": False}
    assert client.get("/api/v1/me/remembered-browsers").json() == {"remembered_browsers": []}
    assert client.get("/api/v1/me").status_code == 200  # forgetting browsers signs no one out


def test_another_users_browser_is_not_found(client, anonymous, make_user, clock):
    owner, other = make_user(with_totp=True), make_user(with_totp=True)
    sign_in(anonymous, owner, clock, remember=True)
    browser_id = anonymous.get("/api/v1/me/remembered-browsers").json()["remembered_browsers"][0]["id"]
    sign_in(client, other, clock)
    for method in ("get", "delete"):
        response = getattr(client, method)(f"/api/v1/me/remembered-browsers/{browser_id}")
        assert response.status_code == 404 and response.json()["error"] == "remembered_browser_not_found"
    assert len(anonymous.get("/api/v1/me/remembered-browsers").json()["remembered_browsers"]) == 1


# -- GET/DELETE /api/v1/me/sessions --------------------------------------------------


def test_sessions_are_listed_with_this_session_marked(client, anonymous, make_user):
    member = make_user()
    client.headers.update(CHROME_WINDOWS)
    anonymous.headers.update(FIREFOX_LINUX)
    sign_in(anonymous, member)
    sign_in(client, member)
    listed = client.get("/api/v1/me/sessions").json()["sessions"]
    assert [(s["label"], s["current"]) for s in listed] == [("Chrome on Windows", True), ("Firefox on Linux", False)]
    assert set(listed[0]) == {"id", "label", "created_at", "last_seen_at", "expires_at", "ip", "current"}
    assert client.get(f"/api/v1/me/sessions/{listed[1]['id']}").json() == listed[1]


def test_ending_another_session_takes_effect_on_its_next_request(client, anonymous, make_user, services):
    member = make_user()
    sign_in(anonymous, member)
    sign_in(client, member)
    other = next(s for s in client.get("/api/v1/me/sessions").json()["sessions"] if not s["current"])
    response = client.delete(f"/api/v1/me/sessions/{other['id']}")
    assert response.json() == {"status": "revoked", "count": 1, "signed_out": False}
    assert anonymous.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").status_code == 200
    event = events(services, "account:session:revoked", member.id)[-1]
    assert event.details == {"reason": "revoked_by_user", "scope": "one", "count": 1, "session_ids": [other["id"]]}
    assert client.delete(f"/api/v1/me/sessions/{other['id']}").status_code == 404


def test_ending_this_session_signs_out(client, make_user):
    member = make_user()
    sign_in(client, member)
    this = client.get("/api/v1/me/sessions").json()["sessions"][0]
    response = client.delete(f"/api/v1/me/sessions/{this['id']}")
    assert response.json() == {"status": "revoked", "count": 1, "signed_out": True}
    assert client.get("/api/v1/me").status_code == 401


def test_delete_on_the_collection_ends_every_other_session(client, anonymous, third, make_user):
    member = make_user()
    sign_in(anonymous, member)
    sign_in(third, member)
    sign_in(client, member)
    response = client.delete("/api/v1/me/sessions")
    assert response.json() == {"status": "revoked", "count": 2, "signed_out": False}
    assert anonymous.get("/api/v1/me").status_code == third.get("/api/v1/me").status_code == 401
    assert [s["current"] for s in client.get("/api/v1/me/sessions").json()["sessions"]] == [True]


def test_include_current_signs_out_everywhere(client, anonymous, make_user, services):
    member = make_user()
    sign_in(anonymous, member)
    sign_in(client, member)
    response = client.delete("/api/v1/me/sessions?include_current=true")
    assert response.json() == {"status": "revoked", "count": 2, "signed_out": True}
    assert client.get("/api/v1/me").status_code == anonymous.get("/api/v1/me").status_code == 401
    assert events(services, "account:session:revoked", member.id)[-1].details["scope"] == "all"


def test_another_users_session_is_not_found(client, anonymous, make_user):
    owner, other = make_user(), make_user()
    sign_in(anonymous, owner)
    session_id = anonymous.get("/api/v1/me/sessions").json()["sessions"][0]["id"]
    sign_in(client, other)
    for method in ("get", "delete"):
        response = getattr(client, method)(f"/api/v1/me/sessions/{session_id}")
        assert response.status_code == 404 and response.json()["error"] == "session_not_found"
    assert anonymous.get("/api/v1/me").status_code == 200


def test_revocation_holds_in_every_process(client, make_user, settings, clock, services):
    """Two app instances on one database stand for two processes: no state lives in a process."""
    member = make_user()
    sign_in(client, member)
    other_process = build_services(settings, clock=clock, notifier=services.notifier)
    try:
        with TestClient(create_app(other_process), base_url="http://127.0.0.1") as elsewhere:
            sign_in(elsewhere, member)
            assert elsewhere.delete("/api/v1/me/sessions").json()["count"] == 1
            assert client.get("/api/v1/me").status_code == 401
    finally:
        other_process.db.dispose()


# -- this session: status and keep-alive -------------------------------------------------


def test_session_status_does_not_count_as_activity_and_keep_alive_does(client, make_user, clock):
    member = make_user()
    sign_in(client, member)
    clock.advance(minutes=10)
    state = client.get("/api/v1/me/session").json()
    assert set(state) == {"id", "expires_at", "seconds_left", "idle_timeout_seconds", "warn_before_seconds"}
    assert state["seconds_left"] == 300 and state["idle_timeout_seconds"] == 900 and state["warn_before_seconds"] == 60
    clock.advance(minutes=4, seconds=30)
    assert client.get("/api/v1/me/session").json()["seconds_left"] == 30
    kept = client.post("/api/v1/me/session/keep-alive").json()
    assert kept["seconds_left"] == 900
    clock.advance(minutes=14)
    assert client.get("/api/v1/me/session").json()["seconds_left"] == 60
    clock.advance(minutes=1)
    assert client.get("/api/v1/me/session").status_code == 401
    assert client.post("/api/v1/me/session/keep-alive").status_code == 401


# -- POST /api/v1/me/password ---------------------------------------------------------------


def test_changing_the_password_ends_other_sessions_and_every_remembered_browser(
    client, anonymous, make_user, clock, services, mailbox
):
    member = make_user(with_totp=True)
    sign_in(anonymous, member, clock, remember=True)
    fresh_step(clock)
    sign_in(client, member, clock, remember=True)
    response = client.post("/api/v1/me/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 200
    assert response.json() == {"status": "changed", "sessions_ended": 1, "browsers_forgotten": 2}
    assert anonymous.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").status_code == 200  # this session stays
    assert client.get("/api/v1/me/remembered-browsers").json() == {"remembered_browsers": []}
    assert password_only(anonymous, member).status_code == 401
    assert password_only(anonymous, member, NEW_PASSWORD).json()["status"] == "second_factor_required"
    changed = events(services, "account:password:changed", member.id)[-1]
    assert changed.details == {"sessions_ended": 1, "browsers_forgotten": 2}
    mail = mailbox.wait_for(1, to=member.email)[-1]
    assert "password" in mail.subject.lower() and NEW_PASSWORD not in mail.text and PASSWORD not in mail.text
    with services.db.reading() as s:
        assert s.get(User, member.id).password_changed_at == clock.now()


def test_a_wrong_current_password_changes_nothing_and_is_audited(client, make_user, services):
    member = make_user()
    sign_in(client, member)
    response = client.post(
        "/api/v1/me/password", json={"current_password": "not my password", "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_credentials"
    assert client.get("/api/v1/me").status_code == 200
    assert events(services, "account:password:change_failed", member.id)[-1].details == {"reason": "wrong_password"}
    client.post("/api/v1/sign-out")
    assert password_only(client, member).json()["status"] == "signed_in"


def test_wrong_current_passwords_are_throttled(client, make_user):
    member = make_user()
    sign_in(client, member)
    for _ in range(5):
        client.post("/api/v1/me/password", json={"current_password": "wrong guess", "new_password": NEW_PASSWORD})
    response = client.post("/api/v1/me/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 429 and response.json()["error"] == "throttled"
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"current_password": PASSWORD, "new_password": "short"}, "invalid_input"),
        ({"current_password": PASSWORD, "new_password": "x" * 257}, "invalid_input"),
        ({"current_password": PASSWORD, "new_password": PASSWORD}, "invalid_input"),
        ({"current_password": PASSWORD}, "validation_error"),
        ({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "extra": 1}, "validation_error"),
        ({"current_password": PASSWORD, "new_password": 123456789012}, "validation_error"),
    ],
    ids=["too-short", "too-long", "unchanged", "missing", "extra-field", "not-a-string"],
)
def test_bad_password_changes_get_a_clear_422_and_change_nothing(client, make_user, services, body, error):
    member = make_user()
    sign_in(client, member)
    response = client.post("/api/v1/me/password", json=body)
    assert response.status_code == 422 and response.json()["error"] == error and response.json()["message"]
    assert not events(services, "account:password:changed")
    client.post("/api/v1/sign-out")
    assert password_only(client, member).json()["status"] == "signed_in"


# -- every route needs a session, and bad ids are clear ---------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/me/session"),
        ("post", "/api/v1/me/session/keep-alive"),
        ("get", "/api/v1/me/sessions"),
        ("delete", "/api/v1/me/sessions"),
        ("get", "/api/v1/me/sessions/1"),
        ("delete", "/api/v1/me/sessions/1"),
        ("get", "/api/v1/me/remembered-browsers"),
        ("delete", "/api/v1/me/remembered-browsers"),
        ("get", "/api/v1/me/remembered-browsers/1"),
        ("delete", "/api/v1/me/remembered-browsers/1"),
        ("post", "/api/v1/me/password"),
    ],
)
def test_every_route_needs_a_session(anonymous, method, path):
    kwargs = {"json": {"current_password": PASSWORD, "new_password": NEW_PASSWORD}} if method == "post" else {}
    response = getattr(anonymous, method)(path, **kwargs)
    assert response.status_code == 401 and response.json()["error"] == "not_authenticated"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/me/sessions/abc",
        "/api/v1/me/remembered-browsers/abc",
        "/api/v1/me/sessions/0",
        "/api/v1/me/remembered-browsers/-1",
        "/api/v1/me/sessions/99999999999999999999999",
        "/api/v1/me/remembered-browsers/99999999999999999999999",
        "/api/v1/me/sessions?include_current=maybe",
    ],
)
def test_malformed_ids_and_flags_get_422(client, make_user, path):
    sign_in(client, make_user())
    response = client.delete(path)
    assert response.status_code == 422 and response.json()["error"] == "validation_error"


def test_another_site_cannot_sign_you_out_everywhere(client, make_user):
    sign_in(client, make_user())
    response = client.delete("/api/v1/me/sessions?include_current=true", headers={"origin": "https://evil.example"})
    assert response.status_code == 403
    assert client.get("/api/v1/me").status_code == 200


def test_the_routes_are_in_the_openapi_document(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"get", "delete"} <= set(paths["/api/v1/me/sessions"]) and {"get", "delete"} <= set(
        paths["/api/v1/me/sessions/{session_id}"]
    )
    assert {"get", "delete"} <= set(paths["/api/v1/me/remembered-browsers"])
    assert {"get", "delete"} <= set(paths["/api/v1/me/remembered-browsers/{browser_id}"])
    assert "post" in paths["/api/v1/me/password"] and "post" in paths["/api/v1/me/session/keep-alive"]
    body = paths["/api/v1/sign-in/{flow_id}/second-factor"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert body == {"$ref": "#/components/schemas/SecondFactorRequest"}
    schema = client.get("/api/openapi.json").json()["components"]["schemas"]["SecondFactorRequest"]
    assert schema["properties"]["remember_browser"]["type"] == "boolean"


def test_an_ended_trust_is_not_listed(client, make_user, clock):
    member = make_user(with_totp=True)
    sign_in(client, member, clock, remember=True)
    clock.advance(timedelta(days=14, minutes=1))
    fresh_step(clock)
    client.post("/api/v1/me/session/keep-alive")  # the session itself has long ended
    assert client.get("/api/v1/me").status_code == 401
    sign_in(client, member, clock)
    assert client.get("/api/v1/me/remembered-browsers").json() == {"remembered_browsers": []}
