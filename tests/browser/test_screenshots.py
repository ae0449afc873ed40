"""The README's screenshots, made by walking the product in Chromium at desktop and phone size,
so they show what the code does today. Written to docs/screenshots/ on every run; the data is
fixed (names, the frozen clock) and the set-up key is masked, so an unchanged page gives the
same picture."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("size", SIZES)
def test_readme_screenshots_of_sign_in_set_up_security_and_members(live_server, browser, make_user, size):
    clock = live_server.clock
    admin = make_user(role="admin", with_totp=True, email="dr.rivera@riverside.example")
    for name in ("nora.nurse", "sam.staff", "priya.provider"):
        make_user(role="staff" if "provider" not in name else "provider", email=f"{name}@riverside.example")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(base_url=live_server.url, viewport=SIZES[size], is_mobile=size == "phone")
    shots = []

    def shoot(name: str, **options) -> None:
        path = SCREENSHOTS / f"{name}-{size}.png"
        page.screenshot(path=str(path), animations="disabled", caret="hide", **options)
        shots.append(path)

    try:
        page = context.new_page()
        page.goto("/sign-in")
        shoot("sign-in")
        page.get_by_label("Email").fill(admin.email)
        page.get_by_label("Password").fill(admin.password)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_label("Authentication code").fill(admin.code(clock))
        page.get_by_role("button", name="Verify").click()
        expect(page.get_by_role("heading", name="Security", exact=True)).to_be_visible()
        clock.advance(seconds=30)
        shoot("security", full_page=True)
        page.goto("/admin/members")
        expect(page.get_by_role("heading", name="Members")).to_be_visible()
        shoot("members", full_page=True)

        newcomer = context.browser.new_context(base_url=live_server.url, viewport=SIZES[size])
        try:
            member = make_user(role="staff", email="new.starter@riverside.example")
            fresh = newcomer.new_page()
            fresh.goto("/sign-in")
            fresh.get_by_label("Email").fill(member.email)
            fresh.get_by_label("Password").fill(member.password)
            fresh.get_by_role("button", name="Sign in").click()
            fresh.get_by_role("button", name="Set up authenticator app").click()
            expect(fresh.get_by_role("heading", name="Set up your authenticator app")).to_be_visible()
            path = SCREENSHOTS / f"set-up-{size}.png"
            # The key is new every run: masked, so the picture changes only when the page does.
            fresh.screenshot(
                path=str(path),
                full_page=True,
                animations="disabled",
                caret="hide",
                mask=[fresh.locator(".qr svg"), fresh.locator("#secret")],
                mask_color="#d7dce3",
            )
            shots.append(path)
        finally:
            newcomer.close()
    finally:
        context.close()
    for path in shots:
        assert path.read_bytes().startswith(PNG) and path.stat().st_size > 5_000, path
