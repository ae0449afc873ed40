"""Real nginx and Caddy, configured as docs/protect-an-app.md says, in front of a tiny app, with
Chromium walking what a member does: visit the app, sign in with password and code, land back on
the page with the app seeing who they are; idle past the timeout; be refused as a member of another
practice; sign out of Twofold and be refused at the app on the next request."""

from __future__ import annotations

import os
import re
import shutil
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS
from tests.support.base import skip_or_fail
from tests.support.optional import PROXY_TOOLS
from tests.support.proxies import Hosts, caddy, free_port, nginx, upstream_app
from twofold.context import RequestContext

pytestmark = [pytest.mark.browser, pytest.mark.proxies]

APP_HOST = "files.riverside.localhost"
TWOFOLD_HOST = "signin.riverside.localhost"
PROXIES = {"nginx": nginx, "caddy": caddy}


@pytest.fixture
def proxy_port() -> int:
    return free_port()


@pytest.fixture
def settings(settings, proxy_port):
    return settings.model_copy(
        update={"public_origin": f"http://{TWOFOLD_HOST}:{proxy_port}", "cookie_domain": "riverside.localhost"}
    )


@pytest.fixture(params=sorted(PROXIES))
def proxied(request, live_server, proxy_port, tmp_path, practice, services):
    """The chosen proxy in front of Twofold and the app; yields (app URL, Twofold URL)."""
    if shutil.which(request.param) is None and not os.path.exists(PROXY_TOOLS[request.param]):
        skip_or_fail(f"{request.param} is not installed")
    services.apps.add_app(
        practice_id=practice.id,
        actor_id=None,
        name="File share",
        url=f"http://{APP_HOST}:{proxy_port}",
        bypass_paths=["/health"],
        context=RequestContext(),
    )
    with upstream_app() as upstream_port:
        hosts = Hosts(
            app=APP_HOST,
            twofold=TWOFOLD_HOST,
            twofold_port=urlsplit(live_server.url).port,
            upstream_port=upstream_port,
            proxy_port=proxy_port,
        )
        with PROXIES[request.param](tmp_path, hosts):
            yield f"http://{APP_HOST}:{proxy_port}", f"http://{TWOFOLD_HOST}:{proxy_port}"


@pytest.fixture
def page(browser, proxied):
    """A fresh Chromium context whose host names resolve to loopback, as DNS would point them at the proxy."""
    # A second browser process with the resolver rule (the shared one has none).
    chromium = browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP *.riverside.localhost 127.0.0.1"],
        headless=True,
    )
    context = chromium.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()
    chromium.close()


def sign_in_on_page(page, member, clock) -> None:
    page.fill("#email", member.email)
    page.fill("#password", member.password)
    page.click("button[type=submit]")
    clock.advance(seconds=30)  # a fresh code step
    page.fill("#code", member.code(clock))
    page.get_by_role("button", name="Verify").click()


def test_a_member_signs_in_through_the_proxy_and_the_app_sees_who_they_are(page, proxied, make_user, clock):
    app_url, twofold_url = proxied
    member = make_user(role="provider", with_totp=True, email="dr.lee@riverside.example")
    wanted = f"{app_url}/reports/2024?q=a%20b"

    page.goto(wanted)
    expect(page).to_have_url(re.compile("^" + re.escape(f"{twofold_url}/sign-in?rd=")))
    sign_in_on_page(page, member, clock)
    expect(page).to_have_url(wanted)
    expect(page.locator("#remote-user")).to_have_text("Remote-User: dr.lee@riverside.example")
    expect(page.locator("#remote-groups")).to_have_text("Remote-Groups: provider")
    expect(page.locator("#remote-practice")).to_have_text("Remote-Practice: Riverside Family Practice")

    # Idle past the practice's 15 minutes: the next app request goes to sign in.
    clock.advance(minutes=16)
    page.goto(wanted)
    expect(page).to_have_url(re.compile("^" + re.escape(f"{twofold_url}/sign-in")))
    sign_in_on_page(page, member, clock)
    expect(page).to_have_url(wanted)

    # Sign out in Twofold: the very next app request is refused.
    page.goto(f"{twofold_url}/account/security")
    page.click("form[action='/sign-out'] button")
    expect(page).to_have_url(re.compile(re.escape(f"{twofold_url}/sign-in")))
    page.goto(wanted)
    expect(page).to_have_url(re.compile("^" + re.escape(f"{twofold_url}/sign-in?rd=")))


def test_a_member_of_another_practice_gets_a_403_page(page, proxied, make_practice, make_user, clock):
    app_url, twofold_url = proxied
    lakeside = make_practice("Lakeside Clinic")
    other = make_user(role="admin", with_totp=True, email="admin@lakeside.example", practice_id=lakeside.id)
    page.goto(f"{twofold_url}/sign-in")
    sign_in_on_page(page, other, clock)
    expect(page).to_have_url(re.compile(re.escape(f"{twofold_url}/")))
    response = page.goto(f"{app_url}/reports")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_contain_text("Not open to you")
    assert "Remote-User" not in page.content()
    # Twofold's page at the app's address, styled from Twofold's origin (which its CSP allows).
    assert page.locator(".topbar").evaluate("e => getComputedStyle(e).display") == "flex"
    assert page.get_by_role("link", name="Twofold").get_attribute("href") == f"{twofold_url}/"


def test_a_client_cannot_send_its_own_identity_past_the_proxy(proxied):
    app_url, _twofold_url = proxied
    port = urlsplit(app_url).port
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Host": f"{APP_HOST}:{port}"}) as curl:
        bypass = curl.get("/health", headers={"Remote-User": "boss@riverside.example", "Remote-Groups": "admin"})
        assert bypass.status_code == 200 and "/health" in bypass.text
        # Never the client's values. (nginx sends none; Debian's Caddy 2.6 sends its unfilled placeholder,
        # "{http.reverse_proxy.header.Remote-User}", which docs/protect-an-app.md mentions.)
        assert "boss@" not in bypass.text and ">Remote-Groups: admin<" not in bypass.text
        signed_out = curl.get("/reports", headers={"Remote-User": "boss@riverside.example"})
        assert signed_out.status_code in (302, 401) and "boss@" not in signed_out.text
