"""Forward-auth (Caddy/Traefik) and auth-request (nginx): the contract, line by line, and bad input."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import PASSWORD, backends, sign_in
from tests.support.practice_admin import events
from twofold.context import RequestContext
from twofold.core.forward_auth import BadForwardedRequest, ProxiedRequest
from twofold.core.sessions import TOUCH_INTERVAL
from twofold.store.models import User, UserSession

ORIGIN = "https://signin.riverside.example"
APP_URL = "https://files.riverside.example"
PAGE = "/reports/2024?q=a%20b"
# The proxies are asked about https requests, and the session cookie is shared with the apps' hosts.
COOKIE = "__Secure-twofold_session"


@pytest.fixture(params=backends())
def backend(request):
    return request.param


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"public_origin": ORIGIN, "cookie_domain": "riverside.example"})


@pytest.fixture
def files(services, practice):
    return services.apps.add_app(
        practice_id=practice.id,
        actor_id=None,
        name="File share",
        url=APP_URL,
        bypass_paths=["/health", "/static/"],
        context=RequestContext(),
    )


@pytest.fixture
def proxy(app):
    """The reverse proxy: a trusted peer (loopback, the default TWOFOLD_TRUSTED_PROXIES)."""
    with TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 41000)) as client:
        yield client


@pytest.fixture
def member(make_user, client, clock):
    """A provider with an authenticator app, signed in on ``client``; ``member.cookie`` is their session."""
    person = make_user(role="provider", with_totp=True, email="dr.who@riverside.example")
    person.cookie = signed_in(client, person, clock)
    return person


def signed_in(client, person, clock) -> str:
    """Sign ``person`` in on ``client`` and keep the cookie (scoped to riverside.example, which 127.0.0.1 is not)."""
    token = session_of(sign_in(client, person, clock))
    client.cookies.set("twofold_session", token)
    return token


def session_of(response) -> str:
    """The session token a sign-in answer set (read from Set-Cookie: its Domain is not 127.0.0.1's)."""
    [cookie] = [c for c in response.headers.get_list("set-cookie") if "twofold_session=" in c]
    return cookie.split(";")[0].split("=", 1)[1]


def ask(proxy, cookie=None, *, host="files.riverside.example", uri=PAGE, html=True, **extra):
    headers = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": host,
        "X-Forwarded-Uri": uri,
        "X-Forwarded-Method": "GET",
        "X-Forwarded-For": "203.0.113.7",
        **extra,
    }
    if html:
        headers["Accept"] = "text/html,application/xhtml+xml"
    if cookie:
        headers["Cookie"] = f"{COOKIE}={cookie}"
    return proxy.get("/api/v1/forward-auth", headers=headers, follow_redirects=False)


def ask_nginx(proxy, cookie=None, *, url=APP_URL + PAGE, **extra):
    headers = {
        "X-Original-URL": url,
        "X-Original-Method": "GET",
        "X-Forwarded-Proto": "https",
        "Accept": "text/html",
        **extra,
    }
    if cookie:
        headers["Cookie"] = f"{COOKIE}={cookie}"
    return proxy.get("/api/v1/auth-request", headers=headers, follow_redirects=False)


def identity(response) -> dict:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("remote-")}


# -- signed in ---------------------------------------------------------------------------------------


def test_a_signed_in_member_is_let_through_with_their_identity(proxy, member, files, services, practice):
    for answer in (ask(proxy, member.cookie), ask_nginx(proxy, member.cookie)):
        assert answer.status_code == 200
        assert identity(answer) == {
            "remote-user": "dr.who@riverside.example",
            "remote-email": "dr.who@riverside.example",
            "remote-name": "Dr.Who",
            "remote-groups": "provider",
            "remote-practice": "Riverside Family Practice",
        }


def test_the_first_access_in_a_session_is_audited_once_not_per_request(proxy, member, files, services, clock):
    for _ in range(5):
        assert ask(proxy, member.cookie).status_code == 200
        clock.advance(seconds=30)
    [first] = events(services, "account:app:accessed")
    assert first.subject_id == member.id and first.details["app_id"] == files.id and first.ip == "203.0.113.7"
    services.forward_auth._accessed.__init__(10)  # a new process: the database still knows
    assert ask(proxy, member.cookie).status_code == 200
    assert len(events(services, "account:app:accessed")) == 1


def test_activity_is_written_at_most_once_per_interval_and_counts_as_activity(proxy, member, files, services, clock):
    def last_seen():
        with services.db.reading() as s:
            return s.execute(select(UserSession.last_seen_at).where(UserSession.user_id == member.id)).scalar_one()

    before = last_seen()
    clock.advance(seconds=TOUCH_INTERVAL.total_seconds() / 2)
    assert ask(proxy, member.cookie).status_code == 200
    assert last_seen() == before  # not written on every call
    clock.advance(seconds=TOUCH_INTERVAL.total_seconds())
    assert ask(proxy, member.cookie).status_code == 200
    assert last_seen() == clock.now()
    # Using the app keeps the session alive past the 15-minute idle timeout...
    for _ in range(4):
        clock.advance(minutes=10)
        assert ask(proxy, member.cookie).status_code == 200
    # ...and idling past it sends the browser to sign in.
    clock.advance(minutes=16)
    assert ask(proxy, member.cookie).status_code == 302


def test_a_session_started_on_a_shared_workstation_ends_at_its_shorter_timeout_at_the_proxy_too(
    proxy, make_user, files, services, clock
):
    admin = make_user(role="admin")
    with services.db.reading() as s:
        admin_row = s.get(User, admin.id)
    marked = services.workstations.mark(admin=admin_row, name="Front desk 1", context=RequestContext())
    desk = RequestContext(workstation=marked.cookie.value)
    staff = make_user(role="staff", email="sam@riverside.example")  # password only: signed in at once
    on_desk = services.sign_in.start_sign_in(email=staff.email, password=PASSWORD, context=desk).session_token
    elsewhere = services.sign_in.start_sign_in(email=staff.email, password=PASSWORD, context=RequestContext())
    clock.advance(minutes=1, seconds=59)
    assert ask(proxy, on_desk).status_code == 200  # activity: the two minutes start again
    clock.advance(minutes=2)
    assert ask(proxy, on_desk).status_code == 302  # the workstation's 2 idle minutes, not the practice's 15
    assert ask(proxy, elsewhere.session_token).status_code == 200


# -- not signed in --------------------------------------------------------------------------------------


def test_a_browser_that_is_not_signed_in_is_sent_to_sign_in_and_back(proxy, files):
    answer = ask(proxy)
    assert answer.status_code == 302
    assert answer.headers["location"] == f"{ORIGIN}/sign-in?rd={quote(APP_URL + PAGE, safe='')}"
    assert identity(answer) == {}


def test_a_client_that_is_not_a_browser_gets_401_with_www_authenticate(proxy, files):
    answer = ask(proxy, html=False, Accept="application/json")
    assert answer.status_code == 401 and answer.json()["error"] == "not_authenticated"
    assert answer.headers["www-authenticate"].startswith("Cookie realm=")


def test_nginx_always_gets_401_with_the_sign_in_url_in_location(proxy, files):
    answer = ask_nginx(proxy)
    assert answer.status_code == 401
    assert answer.headers["location"] == f"{ORIGIN}/sign-in?rd={quote(APP_URL + PAGE, safe='')}"


@pytest.mark.parametrize("end", ["sign_out", "sign_out_everywhere", "deactivate", "reset"])
def test_ending_trust_in_twofold_locks_the_member_out_of_every_app_at_once(
    proxy, client, member, files, services, practice, make_user, clock, end
):
    assert ask(proxy, member.cookie).status_code == 200
    if end == "sign_out":
        client.post("/api/v1/sign-out")
    elif end == "sign_out_everywhere":
        assert client.delete("/api/v1/me/sessions", params={"include_current": "true"}).status_code == 200
    else:
        admin = make_user(role="admin", with_totp=True)
        with TestClient(proxy.app, base_url="http://127.0.0.1") as admin_client:
            signed_in(admin_client, admin, clock)
            if end == "deactivate":
                changed = admin_client.patch(f"/api/v1/practice/members/{member.id}", json={"active": False})
            else:
                clock.advance(seconds=30)
                changed = admin_client.post(
                    f"/api/v1/practice/members/{member.id}/two-factor-reset",
                    json={"password": admin.password, "code": admin.code(clock), "reason": "lost phone"},
                )
            assert changed.status_code == 200, changed.text
    assert ask(proxy, member.cookie).status_code == 302
    assert ask_nginx(proxy, member.cookie).status_code == 401


# -- refused -------------------------------------------------------------------------------------------


def test_a_member_of_another_practice_a_role_not_allowed_and_a_disabled_app_get_403(
    proxy, member, files, services, practice, make_practice, make_user, clock
):
    lakeside = make_practice("Lakeside Clinic")
    other = make_user(role="admin", with_totp=True, email="admin@lakeside.example", practice_id=lakeside.id)
    with TestClient(proxy.app, base_url="http://127.0.0.1") as elsewhere:
        other_cookie = session_of(sign_in(elsewhere, other, clock))
    refused = ask(proxy, other_cookie, html=False)
    assert refused.status_code == 403 and refused.json()["reason"] == "other_practice" and identity(refused) == {}
    assert ask_nginx(proxy, other_cookie).status_code == 403

    services.apps.update_app(
        practice_id=practice.id,
        actor_id=None,
        app_id=files.id,
        changes={"allowed_roles": ["admin"]},
        context=RequestContext(),
    )
    role = ask(proxy, member.cookie)
    assert role.status_code == 403 and "Your role may not use this app" in role.text
    services.apps.update_app(
        practice_id=practice.id,
        actor_id=None,
        app_id=files.id,
        changes={"allowed_roles": ["provider"], "enabled": False},
        context=RequestContext(),
    )
    assert ask(proxy, member.cookie, html=False).json()["reason"] == "app_disabled"

    denials = sorted(events(services, "account:app:access_denied"), key=lambda e: e.id)
    assert [(e.subject_id, e.details["reason"]) for e in denials] == [
        (other.id, "other_practice"),
        (member.id, "role"),
        (member.id, "app_disabled"),
    ]
    assert "app" not in denials[0].details  # practice B's log does not name practice A's app
    for _ in range(3):
        ask(proxy, member.cookie)  # repeated refusals are not one row each
    assert len(events(services, "account:app:access_denied")) == 3


def test_an_unknown_host_is_denied_signed_in_or_not(proxy, member, files, services):
    assert ask(proxy, host="evil.example").status_code == 403
    assert ask(proxy, member.cookie, host="evil.example", html=False).json()["reason"] == "unknown_host"
    assert ask_nginx(proxy, url="https://evil.example/").status_code == 403
    assert ask(proxy, member.cookie, host="files.riverside.example:8443").status_code == 403  # another port
    services.apps.remove_app(practice_id=files.practice_id, actor_id=None, app_id=files.id, context=RequestContext())
    assert ask(proxy, member.cookie).status_code == 403


def test_untrusted_peers_are_refused_whatever_they_claim(app, member, files):
    with TestClient(app, base_url="http://127.0.0.1", client=("198.51.100.1", 41000)) as stranger:
        for answer in (ask(stranger, member.cookie), ask_nginx(stranger, member.cookie)):
            assert answer.status_code == 403 and answer.json()["error"] == "untrusted_proxy"
            assert identity(answer) == {}


# -- bypass paths ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "bypassed"),
    [
        ("/health", True),
        ("/static/app.css?v=2", True),
        ("/static", False),
        ("/static/../admin", False),
        ("/static/%2e%2e/admin", False),
        ("/static%2f..%2fadmin", False),
        ("/admin", False),
    ],
)
def test_bypass_paths_are_let_through_without_identity_and_cannot_be_climbed_out_of(proxy, files, uri, bypassed):
    answer = ask(proxy, uri=uri)
    assert (answer.status_code == 200) is bypassed
    assert identity(answer) == {}


def test_a_bypass_path_carries_no_identity_even_when_signed_in(proxy, member, files):
    answer = ask(proxy, member.cookie, uri="/health")
    assert answer.status_code == 200 and identity(answer) == {}


# -- sign in again after N minutes ------------------------------------------------------------------------


def test_reauth_minutes_sends_an_older_sign_in_back_to_sign_in(proxy, member, files, services, practice, clock):
    services.apps.update_app(
        practice_id=practice.id,
        actor_id=None,
        app_id=files.id,
        changes={"reauth_minutes": 30},
        context=RequestContext(),
    )
    for _ in range(3):
        clock.advance(minutes=10)
        assert ask(proxy, member.cookie).status_code == 200
    clock.advance(minutes=1)
    answer = ask(proxy, member.cookie)
    assert answer.status_code == 302 and answer.headers["location"].endswith("&reauth=1")
    assert ask_nginx(proxy, member.cookie).status_code == 401


# -- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"X-Forwarded-Host": ""}, "bad_forwarded_request"),
        ({"X-Forwarded-Uri": ""}, "bad_forwarded_request"),
        ({"X-Forwarded-Uri": "reports"}, "bad_forwarded_request"),
        ({"X-Forwarded-Uri": "/a\tb"}, "bad_forwarded_request"),
        ({"X-Forwarded-Proto": "gopher"}, "bad_forwarded_request"),
        ({"X-Forwarded-Host": "files.riverside.example/evil"}, "bad_forwarded_request"),
        ({"X-Forwarded-Host": "user@files.riverside.example"}, "bad_forwarded_request"),
        ({"X-Forwarded-Uri": "/" + "a" * 9000}, "uri_too_long"),
    ],
)
def test_missing_or_malformed_forwarded_headers_are_a_clear_400(proxy, member, files, headers, code):
    answer = ask(proxy, member.cookie, **headers)
    assert answer.status_code == 400 and answer.json()["error"] == code
    assert "location" not in answer.headers and identity(answer) == {}


@pytest.mark.parametrize(
    "url", ["", "files.riverside.example/x", "javascript:alert(1)", "https://files.riverside.example", "https://[::1"]
)
def test_malformed_original_urls_get_403_from_auth_request_never_a_500(proxy, member, files, url):
    answer = ask_nginx(proxy, member.cookie, url=url) if url else proxy.get("/api/v1/auth-request")
    if url == "https://files.riverside.example":
        assert answer.status_code == 200  # no path is the root
    else:
        assert answer.status_code == 403 and answer.json()["error"] in ("bad_forwarded_request",)


@pytest.mark.parametrize("value", ["/a\r\nSet-Cookie: x=1", "/a\nb", "/a\x00b"])
def test_header_values_with_control_characters_are_refused(value):
    with pytest.raises(BadForwardedRequest):
        ProxiedRequest.from_parts(proto="https", host="files.riverside.example", uri=value, method="GET")
    with pytest.raises(BadForwardedRequest):
        ProxiedRequest.from_url("https://files.riverside.example" + value, "GET")


# -- rd: back to the app after sign-in, and nowhere else -----------------------------------------------------


def sign_in_with_rd(client, member, clock, rd):
    page = client.get("/sign-in", params={"rd": rd})
    assert page.status_code == 200
    form = client.post(
        "/sign-in", data={"email": member.email, "password": member.password, "next": rd}, follow_redirects=False
    )
    assert form.status_code == 303
    clock.advance(seconds=30)
    code = client.post(form.headers["location"], data={"code": member.code(clock)}, follow_redirects=False)
    if code.status_code == 303:
        return code.headers["location"]
    # To another host: a page that moves on by itself (a form's CSP governs the redirects after it).
    assert code.status_code == 200 and 'http-equiv="refresh"' in code.text
    return html.unescape(re.search(r'id="continue">([^<]+)<', code.text).group(1))


def test_rd_returns_to_the_exact_app_page_after_password_and_code(anonymous, make_user, files, clock):
    person = make_user(with_totp=True)
    assert sign_in_with_rd(anonymous, person, clock, APP_URL + PAGE) == APP_URL + PAGE


def test_a_long_app_address_is_returned_to_whole(anonymous, make_user, files, clock):
    """An imaging viewer's link with its study ids, say: up to 2,048 characters come back whole."""
    person = make_user(with_totp=True)
    long_page = APP_URL + "/viewer?studies=" + ",".join(f"1.2.840.{n:06d}" for n in range(125))
    assert 1_600 < len(long_page) <= 2_048
    assert sign_in_with_rd(anonymous, person, clock, long_page) == long_page


@pytest.mark.parametrize(
    "rd",
    [
        "https://evil.example/",
        "https://files.riverside.example.evil.example/",
        "https://files.riverside.example@evil.example/",
        "//evil.example/",
        "javascript:alert(1)",
        "https://files.lakeside.example/",  # an app of another practice
        "https://files.riverside.example/\r\nx",
    ],
)
def test_rd_to_anywhere_else_lands_on_twofold_s_home(anonymous, make_user, files, services, make_practice, clock, rd):
    lakeside = make_practice("Lakeside Clinic")
    services.apps.add_app(
        practice_id=lakeside.id,
        actor_id=None,
        name="Lakeside",
        url="https://files.lakeside.example",
        context=RequestContext(),
    )
    person = make_user(with_totp=True)
    assert sign_in_with_rd(anonymous, person, clock, rd) == "/account/security"


def test_rd_to_a_disabled_app_lands_on_home_and_to_twofold_itself_is_followed(
    anonymous, make_user, files, services, practice, clock
):
    services.apps.update_app(
        practice_id=practice.id, actor_id=None, app_id=files.id, changes={"enabled": False}, context=RequestContext()
    )
    person = make_user(with_totp=True)
    assert sign_in_with_rd(anonymous, person, clock, APP_URL + "/") == "/account/security"
    anonymous.post("/api/v1/sign-out")
    assert sign_in_with_rd(anonymous, person, clock, ORIGIN + "/account/sessions") == ORIGIN + "/account/sessions"


def test_a_signed_in_member_visiting_sign_in_with_rd_goes_straight_back(client, member, files):
    answer = client.get("/sign-in", params={"rd": APP_URL + PAGE}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == APP_URL + PAGE
    again = client.get("/sign-in", params={"rd": APP_URL + PAGE, "reauth": "1"}, follow_redirects=False)
    assert again.status_code == 200 and 'name="password"' in again.text
