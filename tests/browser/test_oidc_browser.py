"""A member signs in to a practice's app through Twofold, in Chromium: the app (Authlib's client,
every check on) sends them to Twofold, they give password and code, and they land back in the app
with the right claims; prompt=login asks again; signing out of the app signs out of Twofold, and
signing out of Twofold signs them out of an app on the back channel. A single-page app does the
code flow with PKCE in its own JavaScript, across origins."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from tests.support.live import live_server as serve
from tests.support.oidc import register_app
from tests.support.relying_party import RelyingParty
from tests.support.single_page_app import SinglePageApp
from twofold.clock import FrozenClock

pytestmark = pytest.mark.browser


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))  # the app checks exp and iat against real time


@contextmanager
def served_party(live_server, services, practice, *, backchannel: bool = False) -> Iterator[tuple[RelyingParty, str]]:
    """The relying party served on its own port and registered at Twofold; yields it and its address."""
    party = RelyingParty(issuer=live_server.url, client_id="", client_secret=None)
    with serve(party.app(), access_log=False) as app_url:
        party.base_url = app_url
        made = register_app(
            services,
            practice.id,
            redirect_uri=f"{app_url}/callback",
            logout_uri=f"{app_url}/signed-out",
            backchannel_logout_uri=f"{app_url}/backchannel-logout" if backchannel else None,
        )
        party.client_id, party.client_secret = made.client_id, made.client_secret
        yield party, app_url


def sign_in_at_twofold(page, member, clock) -> None:
    expect(page.get_by_label("Email")).to_be_visible()
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/sign-in/[A-Za-z0-9_-]+/code$"))
    page.get_by_label("Authentication code").fill(member.code(clock))
    page.get_by_role("button", name="Verify").click()


def test_member_signs_in_to_an_app_through_twofold_and_out_again(
    page, live_server, services, practice, make_user, clock
):
    member = make_user(with_totp=True, role="provider")
    with served_party(live_server, services, practice) as (party, app_url):
        page.goto(f"{app_url}/login")
        expect(page).to_have_url(re.compile(re.escape(live_server.url) + r"/sign-in\?"))
        sign_in_at_twofold(page, member, clock)
        expect(page).to_have_url(f"{app_url}/")
        expect(page.locator("#who")).to_have_text(f"{member.email.split('@')[0].title()} (provider)")
        expect(page.locator("#amr")).to_have_text("pwd otp mfa")
        first = party.last_claims["auth_time"]

        # Signed in at Twofold already: the app gets its sign-in without a form.
        page.goto(f"{app_url}/login")
        expect(page).to_have_url(f"{app_url}/")

        # prompt=login: the password and a code again, though the Twofold session is live.
        clock.advance(seconds=60)
        page.goto(f"{app_url}/login?prompt=login")
        sign_in_at_twofold(page, member, clock)
        expect(page).to_have_url(f"{app_url}/")
        assert party.last_claims["auth_time"] > first

        # Signing out of the app ends the Twofold session and comes back to the app.
        page.get_by_role("link", name="Sign out").click()
        expect(page).to_have_url(re.compile(re.escape(app_url) + r"/signed-out\?state="))
        expect(page.locator("#who")).to_have_text("signed out")
        page.goto(f"{live_server.url}/account/security")
        expect(page).to_have_url(re.compile(r"/sign-in\?next="))


def test_a_single_page_app_signs_in_with_pkce_and_reads_userinfo_across_origins(
    page, live_server, services, practice, make_user, clock
):
    member = make_user(with_totp=True, role="staff")
    spa = SinglePageApp(issuer=live_server.url)
    with serve(spa.app(), access_log=False) as app_url, serve(SinglePageApp(issuer=live_server.url).app()) as other:
        spa.redirect_uri = f"{app_url}/callback"
        spa.client_id = register_app(services, practice.id, public=True, redirect_uri=spa.redirect_uri).client_id

        page.goto(app_url)
        expect(page.locator("#status")).to_have_text("signed out")
        page.get_by_role("button", name="Sign in with Twofold").click()
        sign_in_at_twofold(page, member, clock)
        # Back on the app, its script fetched the token and userinfo from Twofold's origin.
        expect(page.locator("#status")).to_have_text("signed in")
        expect(page.locator("#who")).to_have_text(member.email)
        token = page.evaluate("window.accessToken")

        # A page of an origin no app redirects to cannot read userinfo, even holding the token.
        page.goto(other)
        read = page.evaluate(
            """async ([url, token]) => {
                try { await fetch(url, {headers: {Authorization: `Bearer ${token}`}}); return "read"; }
                catch (error) { return error.name; }
            }""",
            [f"{live_server.url}/userinfo", token],
        )
        assert read == "TypeError"


def test_signing_out_of_twofold_signs_the_member_out_of_an_app_on_the_back_channel(
    page, live_server, services, practice, make_user, clock
):
    member = make_user(with_totp=True, role="provider")
    with served_party(live_server, services, practice, backchannel=True) as (party, app_url):
        page.goto(f"{app_url}/login")
        sign_in_at_twofold(page, member, clock)
        expect(page.locator("#who")).to_have_text(f"{member.email.split('@')[0].title()} (provider)")

        # Signed out in Twofold itself, not through the app: the app hears it server to server.
        page.goto(f"{live_server.url}/account/security")
        page.get_by_role("button", name="Sign out", exact=True).click()
        expect(page).to_have_url(re.compile(r"/sign-in"))
        assert services.backchannel.flush()
        assert party.refused_logouts == [] and party.logged_out_sids == [party.last_claims["sid"]]
        page.goto(app_url)
        expect(page.locator("#who")).to_have_text("not signed in")
