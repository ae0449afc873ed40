"""Security keys and passkeys in Chromium, with its DevTools virtual authenticator (the WebAuthn domain):
a CTAP2 USB security key without resident keys for the second step, an internal platform authenticator
with resident keys and user verification for passkeys. The site is opened as ``localhost`` (WebAuthn
refuses an IP address as a relying party id), so the relying party id is ``localhost``."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD
from twofold.crypto import otp
from twofold.store.models import UserSession, WebAuthnCredential

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

SECURITY = re.compile(r"/account/security(\?.*)?$")


def localhost(url: str) -> str:
    return url.replace("127.0.0.1", "localhost")


@pytest.fixture
def site(live_server) -> str:
    return localhost(live_server.url)


def browser_page(browser, site: str):
    context = browser.new_context(base_url=site, viewport={"width": 1000, "height": 1100})
    context.set_default_timeout(10_000)
    page = context.new_page()
    return context, page


def with_authenticator(page, **options) -> tuple[object, str]:
    """A virtual authenticator on ``page``'s browser; returns the DevTools session and its id."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {"options": {"automaticPresenceSimulation": True, "isUserVerified": True, **options}},
    )
    return cdp, added["authenticatorId"]


def password_step(page, member) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def app_code_step(page, member, clock) -> None:
    clock.advance(seconds=otp.PERIOD)
    page.get_by_label("Authentication code").fill(member.code(clock))
    page.get_by_role("button", name="Verify", exact=True).click()
    expect(page).to_have_url(SECURITY)


def add_key(page, name: str) -> None:
    page.goto("/account/security")
    page.get_by_label("Name for the key").fill(name)
    page.get_by_role("button", name="Add a security key or passkey").click()
    expect(page.locator(".notice")).to_contain_text("security key or passkey is added")
    expect(page.locator(".key-name").filter(has_text=name)).to_be_visible()


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(re.compile(r"/sign-in\?notice=signed_out$"))


def test_a_usb_security_key_is_the_second_step_and_a_browser_without_it_falls_back_to_the_app(
    browser, site, live_server, make_user
):
    clock, services = live_server.clock, live_server.services
    member = make_user(with_totp=True)
    context, page = browser_page(browser, site)
    cdp, authenticator_id = with_authenticator(
        page, protocol="ctap2", transport="usb", hasResidentKey=False, hasUserVerification=False
    )
    password_step(page, member)
    app_code_step(page, member, clock)
    add_key(page, "Blue YubiKey")
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    assert len(stored) == 1 and stored[0]["isResidentCredential"] is False
    expect(page.locator(".key").filter(has_text="Blue YubiKey")).to_contain_text("Device-bound security key")

    sign_out(page)
    password_step(page, member)
    expect(page.get_by_role("heading", name="Use your security key")).to_be_visible()
    page.get_by_role("button", name="Use your security key").click()
    expect(page).to_have_url(SECURITY)
    expect(page.locator(".key").filter(has_text="Blue YubiKey")).to_contain_text("last used")
    with services.db.reading() as s:
        assert s.execute(select(UserSession.amr).order_by(UserSession.id.desc())).scalars().first() == "pwd hwk mfa"

    # Another browser, without the key: the key step fails there, and the app still works.
    other_context, other = browser_page(browser, site)
    with_authenticator(other, protocol="ctap2", transport="usb", hasResidentKey=False, hasUserVerification=False)
    password_step(other, member)
    other.get_by_role("button", name="Use your security key").click()
    expect(other.locator("[data-webauthn-error]").first).to_be_visible()
    expect(other).to_have_url(re.compile(r"/code$"))
    app_code_step(other, member, clock)
    other_context.close()
    context.close()


def test_a_passkey_signs_in_alone_refuses_without_user_verification_and_can_be_removed(
    browser, site, live_server, make_user
):
    clock, services = live_server.clock, live_server.services
    member = make_user(with_totp=True)
    context, page = browser_page(browser, site)
    cdp, authenticator_id = with_authenticator(
        page, protocol="ctap2", transport="internal", hasResidentKey=True, hasUserVerification=True
    )
    password_step(page, member)
    app_code_step(page, member, clock)
    add_key(page, "Laptop passkey")
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    assert len(stored) == 1 and stored[0]["isResidentCredential"] is True
    # User verification fails (a wrong fingerprint): the passkey does not sign in, by autofill or by the button.
    cdp.send("WebAuthn.setUserVerified", {"authenticatorId": authenticator_id, "isUserVerified": False})
    sign_out(page)
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.locator("[data-webauthn-error]").first).to_be_visible()
    expect(page).to_have_url(re.compile(r"/sign-in(\?.*)?$"))
    with services.db.reading() as s:
        assert s.execute(select(WebAuthnCredential.last_used_at)).scalar_one() is None

    # Verified: the sign-in page's autofill request (conditional mediation) is answered by the passkey, which the
    # virtual authenticator picks at once where a person would pick it from the email field's suggestions. No
    # email, no password: signed in.
    cdp.send("WebAuthn.setUserVerified", {"authenticatorId": authenticator_id, "isUserVerified": True})
    page.goto("/sign-in")
    expect(page).to_have_url(SECURITY)
    expect(page.get_by_role("navigation", name="Account")).to_contain_text(member.email.split("@")[0].title())
    with services.db.reading() as s:
        assert s.execute(select(UserSession.amr).order_by(UserSession.id.desc())).scalars().first() == "hwk user mfa"

    # Remove it, confirming with the password and the passkey itself.
    page.get_by_text("Rename or remove Laptop passkey").click()
    page.locator(".key").get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm with a security key and remove").click()
    expect(page.locator(".notice")).to_contain_text("is removed")
    expect(page.locator(".key")).to_have_count(0)
    with services.db.reading() as s:
        assert s.execute(select(WebAuthnCredential)).first() is None
    context.close()
