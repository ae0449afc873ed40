"""Behind a reverse proxy: the client's address and scheme come from forwarding headers only when the
proxy is trusted (TWOFOLD_TRUSTED_PROXIES), and Twofold's cookies carry the __Host-/__Secure- prefixes."""

from __future__ import annotations

import ipaddress

import pytest
from fastapi.testclient import TestClient

from tests.conftest import PASSWORD, sign_in
from tests.support.practice_admin import events
from twofold.web.app import create_app
from twofold.web.proxies import client_address
from twofold.wiring import build_services

TRUSTED = [ipaddress.ip_network(n) for n in ("127.0.0.1/32", "::1/128", "10.0.0.0/8")]


@pytest.fixture
def app_with(settings, clock, notifier):
    """An app on the test's database with some settings changed (TWOFOLD_TRUSTED_PROXIES, _COOKIE_DOMAIN, ...)."""
    built = []

    def factory(**changes):
        services = build_services(settings.model_copy(update=changes), clock=clock, notifier=notifier)
        built.append(services)
        return create_app(services)

    yield factory
    for services in built:
        services.close()


@pytest.mark.parametrize(
    ("peer", "hops", "client"),
    [
        ("127.0.0.1", ["203.0.113.7"], "203.0.113.7"),  # one trusted proxy
        ("127.0.0.1", ["203.0.113.7", "10.0.0.2"], "203.0.113.7"),  # past a second trusted hop
        ("127.0.0.1", ["6.6.6.6", "203.0.113.7", "10.0.0.2"], "203.0.113.7"),  # the client's own claim is ignored
        ("127.0.0.1", ["10.0.0.3", "10.0.0.2"], "10.0.0.3"),  # every hop trusted: the leftmost
        ("127.0.0.1", ["garbage", "10.0.0.2"], "10.0.0.2"),  # a malformed hop ends the walk
        ("127.0.0.1", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("127.0.0.1", ["203.0.113.7:5555"], "203.0.113.7"),
        ("198.51.100.1", ["203.0.113.7"], "198.51.100.1"),  # an untrusted peer's header is ignored
        ("::ffff:127.0.0.1", ["203.0.113.7"], "203.0.113.7"),  # a v4-mapped trusted peer
    ],
)
def test_the_client_is_the_rightmost_untrusted_hop(peer, hops, client):
    assert client_address(peer, hops, TRUSTED) == client


def failed_sign_in(client, email, forwarded_for):
    return client.post(
        "/api/v1/sign-in", json={"email": email, "password": "wrong"}, headers={"X-Forwarded-For": forwarded_for}
    )


def test_behind_a_trusted_proxy_one_client_s_failures_do_not_throttle_every_other(app_with):
    app = app_with()  # the default: loopback is trusted
    with TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 40000)) as proxy:
        for i in range(50):
            assert failed_sign_in(proxy, f"nobody{i}@riverside.example", "203.0.113.7").status_code == 401
        assert failed_sign_in(proxy, "nobody50@riverside.example", "203.0.113.7").status_code == 429
        # Another client behind the same proxy is not held by the first one's failures.
        assert failed_sign_in(proxy, "other@riverside.example", "198.51.100.9").status_code == 401


def test_forwarding_headers_from_an_untrusted_peer_are_ignored(app_with, services, make_user):
    member = make_user()
    app = app_with()
    with TestClient(app, base_url="http://127.0.0.1", client=("192.0.2.44", 40000)) as direct:
        spoofed = direct.post(
            "/api/v1/sign-in",
            json={"email": member.email, "password": "wrong"},
            headers={"X-Forwarded-For": "203.0.113.7", "Forwarded": "for=203.0.113.8", "X-Forwarded-Proto": "https"},
        )
    assert spoofed.status_code == 401
    with TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 40000)) as proxy:
        proxy.post(
            "/api/v1/sign-in",
            json={"email": member.email, "password": "wrong"},
            headers={"Forwarded": 'for="[2001:db8::7]:443";proto=https'},
        )
    ips = [e.ip for e in events(services, "account:sign_in:password_failed")]
    assert ips == ["192.0.2.44", "2001:db8::7"]


def test_x_forwarded_proto_from_a_trusted_proxy_decides_secure_cookies_and_links(app_with, make_user):
    member = make_user()
    app = app_with()
    body = {"email": member.email, "password": PASSWORD}
    with TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 40000)) as proxy:
        https = proxy.post("/api/v1/sign-in", json=body, headers={"X-Forwarded-Proto": "https"})
    cookie = https.headers["set-cookie"]
    assert cookie.startswith("__Host-twofold_session=") and "Secure" in cookie
    with TestClient(app, base_url="http://127.0.0.1", client=("192.0.2.44", 40000)) as direct:
        spoofed = direct.post("/api/v1/sign-in", json=body, headers={"X-Forwarded-Proto": "https"})
    assert spoofed.headers["set-cookie"].startswith("twofold_session=")  # plain-HTTP localhost, as it is


# -- cookies -------------------------------------------------------------------------------------


def test_host_only_cookies_carry_the_host_prefix(app, make_user, clock):
    member = make_user(with_totp=True)
    with TestClient(app, base_url="https://signin.riverside.example") as browser:
        response = sign_in(browser, member, clock, remember=True)
        assert browser.get("/api/v1/me").status_code == 200  # the browser sends it back and it is read
    cookies = response.headers.get_list("set-cookie")
    session = [c for c in cookies if c.startswith("__Host-twofold_session=")]
    remembered = [c for c in cookies if c.startswith("__Host-twofold_rb_")]
    assert len(session) == 1 and len(remembered) == 1
    for cookie in session + remembered:
        assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie


def test_with_a_cookie_domain_the_session_cookie_is_shared_under_the_secure_prefix(app_with, make_user, clock):
    member = make_user(with_totp=True)
    app = app_with(cookie_domain="riverside.example")
    with TestClient(app, base_url="https://signin.riverside.example") as browser:
        response = sign_in(browser, member, clock, remember=True)
    cookies = response.headers.get_list("set-cookie")
    [session] = [c for c in cookies if "twofold_session=" in c]
    assert session.startswith("__Secure-twofold_session=") and "Domain=riverside.example" in session
    assert "Secure" in session
    [remembered] = [c for c in cookies if "twofold_rb_" in c]
    assert remembered.startswith("__Host-") and "Domain" not in remembered  # trust stays with Twofold's host


def test_a_cookie_without_the_prefix_is_not_a_session(app, client, make_user, clock):
    member = make_user(with_totp=True)
    with TestClient(app, base_url="https://signin.riverside.example") as browser:
        token = sign_in(browser, member, clock).cookies["__Host-twofold_session"]
    with TestClient(app, base_url="https://signin.riverside.example") as planted:
        # What a sibling host of a shared domain could set: the name without the prefix.
        planted.cookies.set("twofold_session", token)
        assert planted.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize("base_url", ["http://127.0.0.1", "https://signin.riverside.example"])
def test_duplicate_session_cookies_are_refused_not_last_one_wins(app, make_user, clock, base_url):
    member = make_user(with_totp=True)
    with TestClient(app, base_url=base_url) as browser:
        response = sign_in(browser, member, clock)
        [(name, token)] = [(k, v) for k, v in response.cookies.items() if k.endswith("twofold_session")]
    with TestClient(app, base_url=base_url) as tossed:
        answer = tossed.get("/api/v1/me", headers={"Cookie": f"{name}=planted-by-a-sibling; {name}={token}"})
        assert answer.status_code == 400 and answer.json()["error"] == "duplicate_session_cookie"
        assert "Max-Age=0" in answer.headers["set-cookie"] or "max-age=0" in answer.headers["set-cookie"].lower()
        page = tossed.get("/account/security", headers={"Cookie": f"{name}={token}; {name}=x"})
        assert page.status_code == 400 and "Sign in again" in page.text
        # One cookie is fine.
        assert tossed.get("/api/v1/me", headers={"Cookie": f"{name}={token}"}).status_code == 200
