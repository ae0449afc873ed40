"""Twofold with a real relying party: a Starlette app using Authlib's OpenID Connect client with
all of its checks (discovery, JWKS signature, iss, aud, nonce, at_hash, PKCE S256, state), both
served by uvicorn on loopback. A plain HTTP client plays the member's browser.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client

from tests.support.live import live_server
from tests.support.oidc import register_app, sign_in_on_page, walk
from tests.support.relying_party import RelyingParty
from twofold.clock import FrozenClock
from twofold.context import RequestContext
from twofold.web.app import create_app


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))  # the app checks exp and iat against real time


@contextmanager
def served(services, practice_id, *, public=False, roles=None):
    """Twofold and the app, each on its own port, the app registered as a client of Twofold."""
    with live_server(create_app(services), access_log=False) as twofold_url:
        party = RelyingParty(issuer=twofold_url, client_id="", client_secret=None)
        with live_server(party.app(), access_log=False) as app_url:
            party.base_url = app_url
            made = register_app(
                services,
                practice_id,
                public=public,
                roles=roles,
                redirect_uri=f"{app_url}/callback",
                logout_uri=f"{app_url}/signed-out",
            )
            party.client_id, party.client_secret = made.client_id, made.client_secret
            yield party, twofold_url


def sign_in_through_the_app(
    browser: httpx.Client, party: RelyingParty, member, clock, query: str = ""
) -> httpx.Response:
    page = walk(browser, f"{party.base_url}/login{query}")
    if page.url.path == "/sign-in":
        answer = sign_in_on_page(browser, page, member, clock)
        page = walk(browser, str(page.url.join(answer.headers["location"])))
    return page


@pytest.mark.parametrize("public", [False, True], ids=["confidential", "public"])
def test_the_app_signs_a_member_in_with_every_library_check_on(services, practice, make_user, clock, public):
    member = make_user(with_totp=True, role="staff")
    with served(services, practice.id, public=public) as (party, _twofold), httpx.Client() as browser:
        page = sign_in_through_the_app(browser, party, member, clock)
        assert page.status_code == 200 and "Patient records" in page.text, page.text[:400]
        claims = party.last_claims
        assert claims["email"] == member.email and claims["groups"] == ["staff"]
        assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["nonce"]
        assert party.last_token["token_type"] == "Bearer" and party.last_token["refresh_token"]

        # Authlib's client refreshes, and Twofold rotates: the old refresh token is spent.
        old = party.last_token["refresh_token"]
        method = "none" if public else "client_secret_basic"
        with OAuth2Client(party.client_id, party.client_secret, token_endpoint_auth_method=method) as oauth:
            refreshed = oauth.refresh_token(f"{party.issuer}/token", refresh_token=old)
            assert refreshed["refresh_token"] != old and refreshed["access_token"]
            with pytest.raises(OAuthError) as replayed:
                oauth.refresh_token(f"{party.issuer}/token", refresh_token=old)
            assert replayed.value.error == "invalid_grant"
            with pytest.raises(OAuthError):  # the replay ended the whole family
                oauth.refresh_token(f"{party.issuer}/token", refresh_token=refreshed["refresh_token"])


def test_prompt_login_through_the_app_asks_again_and_the_app_sees_a_newer_auth_time(
    services, practice, make_user, clock
):
    member = make_user(with_totp=True)
    with served(services, practice.id) as (party, _twofold), httpx.Client() as browser:
        sign_in_through_the_app(browser, party, member, clock)
        first = party.last_claims["auth_time"]
        clock.advance(seconds=90)  # a new code step, within the app's 120 s leeway for iat
        page = walk(browser, f"{party.base_url}/login?prompt=login")
        assert page.url.path == "/sign-in" and 'name="password"' in page.text
        answer = sign_in_on_page(browser, page, member, clock)
        walk(browser, str(page.url.join(answer.headers["location"])))
        assert party.last_claims["auth_time"] > first


def test_logout_from_the_app_ends_the_twofold_session(services, practice, make_user, clock):
    member = make_user(with_totp=True)
    with served(services, practice.id) as (party, twofold), httpx.Client() as browser:
        sign_in_through_the_app(browser, party, member, clock)
        assert browser.get(f"{twofold}/api/v1/me").status_code == 200
        page = walk(browser, f"{party.base_url}/logout")
        assert page.status_code == 200 and "Signed out" in page.text, page.text[:300]
        assert browser.get(f"{twofold}/api/v1/me").status_code == 401
        # Next visit: Twofold asks for the password again.
        assert walk(browser, f"{party.base_url}/login").url.path == "/sign-in"


def test_a_member_of_another_practice_reaches_the_app_with_access_denied(
    services, practice, make_practice, make_user, clock
):
    other = make_practice("Hillside Clinic")
    stranger = make_user(with_totp=True, practice_id=other.id, email="dr@hillside.example")
    with served(services, practice.id) as (party, _twofold), httpx.Client() as browser:
        page = sign_in_through_the_app(browser, party, stranger, clock)
        assert page.status_code == 403 and "another practice" in page.text
        back = page.text.split('class="button" href="')[1].split('"')[0].replace("&amp;", "&")
        at_app = walk(browser, back)
        assert at_app.status_code == 400 and "access_denied" in at_app.text


def test_a_deactivated_members_refresh_fails(services, practice, make_user, clock):
    member = make_user(with_totp=True)
    admin = make_user(role="admin")
    with served(services, practice.id) as (party, twofold), httpx.Client() as browser:
        sign_in_through_the_app(browser, party, member, clock)
        services.members.update_member(
            practice_id=practice.id, member_id=member.id, active=False, actor_id=admin.id, context=RequestContext()
        )
        answer = httpx.post(
            f"{twofold}/token",
            data={"grant_type": "refresh_token", "refresh_token": party.last_token["refresh_token"]},
            auth=(party.client_id, party.client_secret),
        )
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
