"""Invariants 7 and 9: other origins are refused, answers carry strict headers and
safe cookies, and bad input of any kind gets a clear 4xx JSON answer and changes
nothing (never a 5xx).
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.conftest import PASSWORD, SECRET_KEY, backends, sign_in
from twofold.settings import Settings
from twofold.store.models import AuditEvent, SignInFlow, ThrottleFailure, TotpCredential, UserSession
from twofold.web.app import create_app
from twofold.web.security import CSP
from twofold.wiring import build_services

# -- other origins ---------------------------------------------------------------

FOREIGN = [
    pytest.param({"sec-fetch-site": "cross-site"}, id="sec-fetch-site-cross-site"),
    pytest.param({"sec-fetch-site": "same-site"}, id="sec-fetch-site-same-site"),
    pytest.param({"origin": "http://evil.example"}, id="foreign-origin"),
    pytest.param({"origin": "null"}, id="origin-null"),
    pytest.param({"origin": "http://127.0.0.1:8001"}, id="other-port"),
    pytest.param({"origin": "http://127.0.0.1.evil.example"}, id="lookalike-host"),
    pytest.param({"sec-fetch-site": "cross-site", "origin": "http://127.0.0.1"}, id="cross-site-wins-over-origin"),
]
OURS = [
    pytest.param({}, id="neither-header"),
    pytest.param({"origin": "http://127.0.0.1"}, id="our-origin"),
    pytest.param({"sec-fetch-site": "same-origin", "origin": "http://127.0.0.1"}, id="same-origin"),
    pytest.param({"sec-fetch-site": "none"}, id="typed-by-the-user"),
]


def snapshot(services) -> dict:
    """What a refused or invalid request must leave as it was."""
    with services.db.reading() as s:
        return {
            "audit": s.execute(select(func.count()).select_from(AuditEvent)).scalar_one(),
            "throttle": s.execute(select(func.count()).select_from(ThrottleFailure)).scalar_one(),
            "attempts": s.execute(select(func.coalesce(func.sum(SignInFlow.attempts), 0))).scalar_one(),
            "flows": s.execute(select(func.count()).select_from(SignInFlow)).scalar_one(),
            "sessions": s.execute(select(func.count()).select_from(UserSession)).scalar_one(),
            "totp": s.execute(
                select(func.count()).select_from(TotpCredential).where(TotpCredential.confirmed_at.is_not(None))
            ).scalar_one(),
        }


@pytest.mark.parametrize("headers", FOREIGN)
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/sign-in", {"json": {"email": "x@riverside.example", "password": PASSWORD}}),
        ("/sign-in", {"data": {"email": "x@riverside.example", "password": PASSWORD}}),
        ("/api/v1/sign-out", {}),
    ],
    ids=["api-sign-in", "page-sign-in", "sign-out"],
)
def test_state_changing_requests_from_another_origin_are_refused(client, services, headers, path, body):
    """Had any of them passed, the failed sign-in would have left an audit event and a throttle row."""
    before = snapshot(services)
    response = client.post(path, headers=headers, follow_redirects=False, **body)
    assert response.status_code == 403
    assert response.json()["error"] == "cross_origin_refused" and response.json()["message"]
    assert "set-cookie" not in response.headers
    assert snapshot(services) == before


@pytest.mark.parametrize("headers", OURS)
def test_requests_from_our_origin_or_without_browser_headers_pass(client, make_user, headers):
    member = make_user()
    response = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}, headers=headers)
    assert response.status_code == 200 and response.json()["status"] == "signed_in"


def test_a_signed_in_browser_cannot_be_made_to_turn_two_factor_off_from_another_site(client, make_user, clock):
    member = make_user(with_totp=True)
    sign_in(client, member, clock)
    clock.advance(seconds=30)
    response = client.request(
        "DELETE",
        "/api/v1/me/totp",
        json={"password": PASSWORD, "code": member.code(clock)},
        headers={"sec-fetch-site": "cross-site", "origin": "http://evil.example"},
    )
    assert response.status_code == 403
    assert client.get("/api/v1/me").json()["two_factor"]["enabled"] is True


def test_reading_from_another_origin_is_not_refused(client):
    assert client.get("/sign-in", headers={"sec-fetch-site": "cross-site"}).status_code == 200


@pytest.fixture
def services_for(tmp_path, database_url, clock, notifier):
    built = []

    def factory(**overrides):
        fields = {
            "_env_file": None,
            "env": "development",
            "var_dir": tmp_path / "var",
            "database_url": database_url,
            "secret_key": SECRET_KEY,
            "db_pool_size": 4,
            "password_hash_concurrency": 2,
        }
        fields.update(overrides)
        built.append(build_services(Settings(**fields), clock=clock, notifier=notifier))
        return built[-1]

    yield factory
    for services in built:
        services.close()


def test_with_a_public_origin_only_that_origin_may_change_state(services_for, make_user):
    member = make_user()
    app = create_app(services_for(public_origin="https://signin.example.org/"))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        body = {"email": member.email, "password": PASSWORD}
        assert client.post("/api/v1/sign-in", json=body, headers={"origin": "http://127.0.0.1"}).status_code == 403
        assert (
            client.post("/api/v1/sign-in", json=body, headers={"origin": "https://signin.example.org"}).status_code
            == 200
        )


# -- headers and cookies -----------------------------------------------------------


def assert_security_headers(response, *, hsts: bool = False) -> None:
    headers = response.headers
    assert headers["content-security-policy"] == CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["cache-control"] == "no-store"
    assert ("strict-transport-security" in headers) is hsts


def test_the_csp_allows_nothing_inline_and_no_framing():
    directives = dict(part.strip().split(" ", 1) for part in CSP.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'none'" and directives["form-action"] == "'self'"
    assert "unsafe" not in CSP


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/sign-in"),
        ("GET", "/api/v1/me"),
        ("GET", "/api/openapi.json"),
        ("GET", "/static/style.css"),
        ("GET", "/no/such/page"),
        ("GET", "/api/v1/no-such-call"),
        ("POST", "/api/v1/sign-in"),
    ],
)
def test_every_answer_carries_the_security_headers(client, method, path):
    assert_security_headers(client.request(method, path, json={} if method == "POST" else None))


def test_a_refused_request_carries_the_security_headers(client):
    assert_security_headers(client.post("/api/v1/sign-in", json={}, headers={"origin": "null"}))


def test_pages_use_nothing_the_csp_would_block(client, make_user):
    """No inline script or style: the pages work under the strict CSP."""
    sign_in(client, make_user())
    pages = [
        client.get("/sign-in").text,
        client.get("/account/security").text,
        client.post("/account/security/totp").text,
    ]
    for html in pages:
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
        assert "style=" not in html and "<style" not in html
        assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers


def session_cookie(response) -> str:
    cookies = [
        v
        for k, v in response.headers.multi_items()
        if k == "set-cookie" and v.startswith(("twofold_session=", "__Host-twofold_session="))
    ]
    assert len(cookies) == 1
    return cookies[0]


@pytest.mark.parametrize(
    "base_url", ["http://127.0.0.1", "http://localhost", "http://LocalHost:8000", "http://[::1]:8000"]
)
def test_development_cookies_on_local_http_are_httponly_lax_and_not_secure(app, make_user, base_url):
    member = make_user()
    with TestClient(app, base_url=base_url) as client:
        cookie = session_cookie(client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path"} <= attributes and "secure" not in attributes
    assert "samesite=lax" in cookie.lower() and "path=/" in cookie.lower()


@pytest.mark.parametrize(
    "base_url", ["http://clinic.example", "http://localhost.clinic.example:8000", "https://localhost"]
)
def test_development_cookies_anywhere_but_local_http_are_secure(app, make_user, base_url):
    member = make_user()
    with TestClient(app, base_url=base_url) as client:
        cookie = session_cookie(client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}))
    assert "; secure" in cookie.lower()


def test_production_cookies_are_secure_and_hsts_is_sent(services_for, make_user):
    member = make_user()
    app = create_app(services_for(env="production"))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        response = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD})
        cookie = session_cookie(response).lower()
        assert "; secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
        assert_security_headers(response, hsts=True)
        client.cookies.set("__Host-twofold_session", response.cookies["__Host-twofold_session"])
        assert "; secure" in session_cookie(client.post("/api/v1/sign-out")).lower()


def test_sign_out_clears_the_cookie_with_the_same_flags(client, make_user):
    sign_in(client, make_user())
    cookie = session_cookie(client.post("/api/v1/sign-out")).lower()
    assert "max-age=0" in cookie and "httponly" in cookie and "samesite=lax" in cookie


# -- bad input -----------------------------------------------------------------------


HUGE = b'{"email": "' + b"a" * 70_000 + b'", "password": "x"}'

BAD_SIGN_IN = [
    pytest.param({"content": b""}, id="empty-body"),
    pytest.param(
        {"content": b"email=a@b.example&password=x", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        id="form-not-json",
    ),
    pytest.param({"content": b"{not json", "headers": {"content-type": "application/json"}}, id="broken-json"),
    pytest.param({"content": b"\xff\xfe\x00garbage", "headers": {"content-type": "application/json"}}, id="not-utf8"),
    pytest.param({"json": []}, id="array"),
    pytest.param({"json": None}, id="null"),
    pytest.param({"json": "email"}, id="string"),
    pytest.param({"json": {}}, id="empty-object"),
    pytest.param({"json": {"email": "a@b.example"}}, id="missing-password"),
    pytest.param({"json": {"email": 1, "password": 2}}, id="numbers"),
    pytest.param({"json": {"email": ["a@b.example"], "password": "x"}}, id="list-email"),
    pytest.param({"json": {"email": None, "password": "x"}}, id="null-email"),
    pytest.param({"json": {"email": True, "password": "x"}}, id="bool-email"),
    pytest.param({"json": {"email": "", "password": ""}}, id="empty-strings"),
    pytest.param({"json": {"email": "   ", "password": "x"}}, id="blank-email"),
    pytest.param({"json": {"email": "a" * 321, "password": "x"}}, id="email-too-long"),
    pytest.param({"json": {"email": "a@b.example", "password": "x", "admin": True}}, id="extra-field"),
    pytest.param({"json": {"email": "a\x00@b.example", "password": "x"}}, id="nul-in-email"),
]

BAD_CODES = [
    pytest.param({"method": "totp", "code": "abcdef"}, id="letters"),
    pytest.param({"method": "totp", "code": "12345a"}, id="digits-and-a-letter"),
    pytest.param({"method": "totp", "code": "12345"}, id="five-digits"),
    pytest.param({"method": "totp", "code": "1234567"}, id="seven-digits"),
    pytest.param({"method": "totp", "code": "１２３４５６"}, id="full-width-digits"),
    pytest.param({"method": "totp", "code": "١٢٣٤٥٦"}, id="arabic-indic-digits"),
    pytest.param({"method": "totp", "code": "12345\x00"}, id="nul"),
    pytest.param({"method": "totp", "code": "-12345"}, id="negative"),
    pytest.param({"method": "totp", "code": "      "}, id="spaces"),
    pytest.param({"method": "totp", "code": ""}, id="empty"),
    pytest.param({"method": "totp", "code": "1" * 65}, id="too-long"),
    pytest.param({"method": "totp", "code": 123456}, id="number"),
    pytest.param({"method": "totp", "code": None}, id="null"),
    pytest.param({"method": "totp", "code": ["123456"]}, id="list"),
    pytest.param({"method": "totp"}, id="missing-code"),
    pytest.param({"code": "123456"}, id="missing-method"),
    pytest.param({"method": "sms", "code": "123456"}, id="unknown-method"),
    pytest.param({"method": "totp\x00", "code": "123456"}, id="nul-method"),
    pytest.param({"method": "totp", "code": "123456", "trusted": True}, id="extra-field"),
    pytest.param({"method": "totp", "code": "123456", "remember_browser": "yes"}, id="remember-not-bool"),
    pytest.param([], id="array"),
    pytest.param("123456", id="bare-string"),
]

UNKNOWN_FLOWS = [
    pytest.param("doesnotexist", id="unknown"),
    pytest.param("x" * 65, id="too-long"),
    pytest.param("%00", id="nul"),
    pytest.param("..%2F..%2Fetc", id="path-trick"),
    pytest.param("%E2%80%AE", id="unicode"),
]

BAD_CONFIRMATIONS = [
    pytest.param({"enrollment_id": "unknown", "code": "123456"}, id="unknown-enrollment"),
    pytest.param({"enrollment_id": "\x00", "code": "123456"}, id="nul-enrollment"),
    pytest.param({"enrollment_id": "e", "code": "abcdef"}, id="letters"),
    pytest.param({"enrollment_id": "e", "code": "12345"}, id="five-digits"),
    pytest.param({"enrollment_id": "e", "code": "1234567"}, id="seven-digits"),
    pytest.param({"enrollment_id": "e", "code": "１２３４５６"}, id="full-width"),
    pytest.param({"enrollment_id": "e", "code": 123456}, id="number"),
    pytest.param({"enrollment_id": "e"}, id="missing-code"),
    pytest.param({"enrollment_id": "e", "code": "123456", "enabled": True}, id="extra-field"),
]


def assert_clear_4xx(response, case) -> None:
    assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error", "message"} and body["error"] and body["message"], (case, body)


def send_sign_in(client, request_kwargs):
    return client.post("/api/v1/sign-in", **request_kwargs)


def send_code(client, flow: str, body):
    return client.post(f"/api/v1/sign-in/{flow}/second-factor", json=body)


def send_confirmation(client, enrollment_id: str, body):
    body = {k: (enrollment_id if v == "e" else v) for k, v in body.items()}
    return client.post("/api/v1/me/totp/confirm", json=body)


def open_flow(client, member) -> str:
    return client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).json()["flow_id"]


@pytest.mark.parametrize("request_kwargs", BAD_SIGN_IN)
def test_bad_sign_in_input_gets_a_clear_4xx_and_changes_nothing(client, services, make_user, request_kwargs):
    make_user()
    before = snapshot(services)
    assert_clear_4xx(send_sign_in(client, request_kwargs), request_kwargs)
    assert snapshot(services) == before


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_a_huge_body_is_refused_with_413(client, services, transfer):
    before = snapshot(services)
    content = HUGE if transfer == "content-length" else iter([HUGE[i : i + 8192] for i in range(0, len(HUGE), 8192)])
    response = client.post("/api/v1/sign-in", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert snapshot(services) == before


@pytest.mark.parametrize("body", BAD_CODES)
def test_bad_code_input_gets_a_clear_4xx_and_changes_nothing(client, services, make_user, body):
    flow = open_flow(client, make_user(with_totp=True))
    before = snapshot(services)
    assert_clear_4xx(send_code(client, flow, body), body)
    assert snapshot(services) == before


@pytest.mark.parametrize("flow_id", UNKNOWN_FLOWS)
def test_unknown_flow_ids_are_404_and_change_nothing(client, services, flow_id):
    before = snapshot(services)
    response = send_code(client, flow_id, {"method": "totp", "code": "123456"})
    assert response.status_code == 404
    assert_clear_4xx(response, flow_id)
    assert snapshot(services) == before


@pytest.mark.parametrize("body", BAD_CONFIRMATIONS)
def test_bad_confirmation_input_gets_a_clear_4xx_and_changes_nothing(client, services, make_user, body):
    sign_in(client, make_user())
    enrollment_id = client.post("/api/v1/me/totp").json()["enrollment_id"]
    before = snapshot(services)
    assert_clear_4xx(send_confirmation(client, enrollment_id, body), body)
    assert snapshot(services) == before


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_the_bad_input_tables_hold_on_postgresql(client, services, make_user):
    """The same tables on PostgreSQL, which refuses strings (a NUL) that SQLite takes; one test to keep it quick."""
    make_user()
    member = make_user(with_totp=True)
    flow = open_flow(client, member)
    before = snapshot(services)
    for case in BAD_SIGN_IN:
        assert_clear_4xx(send_sign_in(client, case.values[0]), case.id)
    for case in BAD_CODES:
        assert_clear_4xx(send_code(client, flow, case.values[0]), case.id)
    for case in UNKNOWN_FLOWS:
        assert_clear_4xx(send_code(client, case.values[0], {"method": "totp", "code": "123456"}), case.id)
    assert snapshot(services) == before
    sign_in(client, make_user())
    enrollment_id = client.post("/api/v1/me/totp").json()["enrollment_id"]
    before = snapshot(services)
    for case in BAD_CONFIRMATIONS:
        assert_clear_4xx(send_confirmation(client, enrollment_id, case.values[0]), case.id)
    assert snapshot(services) == before


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"password": PASSWORD, "code": "abcdef"}, id="letters"),
        pytest.param({"password": PASSWORD, "code": "１２３４５６"}, id="full-width"),
        pytest.param({"password": PASSWORD, "code": "12345"}, id="five-digits"),
        pytest.param({"password": PASSWORD}, id="missing-code"),
        pytest.param({"password": 1, "code": "123456"}, id="number-password"),
        pytest.param({"password": PASSWORD, "code": "123456", "force": True}, id="extra-field"),
    ],
)
def test_bad_input_when_turning_two_factor_off_gets_a_clear_4xx_and_changes_nothing(
    client, services, make_user, clock, body
):
    sign_in(client, make_user(with_totp=True), clock)
    before = snapshot(services)
    response = client.request("DELETE", "/api/v1/me/totp", json=body)
    assert 400 <= response.status_code < 500, response.text
    assert set(response.json()) == {"error", "message"}
    assert snapshot(services) == before


def test_page_forms_with_bad_input_answer_4xx_pages_not_errors(client, make_user, clock, services):
    member = make_user(with_totp=True)
    assert client.post("/sign-in", data={"email": "", "password": ""}).status_code == 422
    assert client.post("/sign-in", data={"email": "x" * 400, "password": "y"}).status_code == 422
    response = client.post("/sign-in", data={"email": member.email, "password": PASSWORD}, follow_redirects=False)
    code_page = response.headers["location"]
    before = snapshot(services)
    for code in ("abcdef", "12345", "１２３４５６", ""):
        answer = client.post(code_page, data={"code": code})
        assert 400 <= answer.status_code < 500 and "text/html" in answer.headers["content-type"]
    assert snapshot(services) == before


# -- arbitrary JSON never gets a 5xx ----------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)
codes = st.text(max_size=12) | st.from_regex(r"\A[0-9 ]{5,8}\Z") | json_values
sign_in_bodies = json_values | st.fixed_dictionaries(
    {"email": st.emails() | st.text(max_size=40) | json_values, "password": st.text(max_size=40) | json_values}
)
code_bodies = json_values | st.fixed_dictionaries(
    {"method": st.sampled_from(["totp", "email", "recovery_code", ""]) | json_values, "code": codes},
    optional={"remember_browser": json_values},
)


@pytest.fixture
def fixed_member(make_user):
    return make_user(with_totp=True, email="fixed@riverside.example")


@pytest.mark.parametrize("backend", backends(), indirect=True)
@hypothesis_settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sign_in_body=sign_in_bodies, code_body=code_bodies, flow_suffix=st.sampled_from(["", "x", "%00"]))
def test_arbitrary_json_never_gets_a_5xx(client, fixed_member, sign_in_body, code_body, flow_suffix):
    answer = client.post("/api/v1/sign-in", json=sign_in_body)
    assert answer.status_code < 500, (sign_in_body, answer.text)
    assert {"error", "message"} <= set(answer.json()) or answer.json().get("status")
    flow = (
        client.post("/api/v1/sign-in", json={"email": "fixed@riverside.example", "password": PASSWORD})
        .json()
        .get("flow_id", "nope")
    )
    answer = client.post(f"/api/v1/sign-in/{flow}{flow_suffix}/second-factor", json=code_body)
    assert answer.status_code < 500, (code_body, answer.text)
