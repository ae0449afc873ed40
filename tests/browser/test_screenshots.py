"""The README's screenshots, made by walking the product in Chromium at desktop and phone size,
so they show what the code does today. The data is fixed (names, the frozen clock) and the set-up
key is masked, so an unchanged page gives the same picture, give or take a few anti-aliased
pixels: a picture is written to docs/screenshots/ only when Chromium, comparing it with the one
there pixel by pixel, finds more than that changed. A test run leaves the tree as it was unless a
page really changed."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
PNG = b"\x89PNG\r\n\x1a\n"
# Pixels that may differ (any channel by more than 16) for two pictures to count as the same.
NOISE_PIXELS = 64

DIFFERENT_PIXELS = """async ([before, after]) => {
  const pixels = async (b64) => {
    const bitmap = await createImageBitmap(await (await fetch("data:image/png;base64," + b64)).blob());
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const context = canvas.getContext("2d");
    context.drawImage(bitmap, 0, 0);
    return context.getImageData(0, 0, bitmap.width, bitmap.height);
  };
  const [a, b] = [await pixels(before), await pixels(after)];
  if (a.width !== b.width || a.height !== b.height) return -1;
  let count = 0;
  for (let i = 0; i < a.data.length; i += 4) {
    for (let c = 0; c < 4; c++) {
      if (Math.abs(a.data[i + c] - b.data[i + c]) > 16) { count++; break; }
    }
  }
  return count;
}"""


def changed_pixels(browser, before: bytes, after: bytes) -> int:
    """How many pixels differ between two PNGs, as Chromium decodes them (-1: another size)."""
    context = browser.new_context()
    try:
        page = context.new_page()
        return page.evaluate(DIFFERENT_PIXELS, [base64.b64encode(before).decode(), base64.b64encode(after).decode()])
    finally:
        context.close()


def keep(browser, path: Path, picture: bytes) -> None:
    """Write ``picture`` to ``path`` unless the picture there already shows the same page."""
    if path.exists():
        changed = changed_pixels(browser, path.read_bytes(), picture)
        if 0 <= changed <= NOISE_PIXELS:
            return
    path.write_bytes(picture)


@pytest.mark.parametrize("size", SIZES)
def test_readme_screenshots_of_sign_in_set_up_security_and_members(live_server, browser, make_user, size):
    clock = live_server.clock
    admin = make_user(role="admin", with_totp=True, email="dr.rivera@riverside.example")
    for name in ("nora.nurse", "sam.staff", "priya.provider"):
        make_user(role="staff" if "provider" not in name else "provider", email=f"{name}@riverside.example")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(base_url=live_server.url, viewport=SIZES[size], is_mobile=size == "phone")
    shots: dict[Path, bytes] = {}

    def shoot(name: str, **options) -> None:
        shots[SCREENSHOTS / f"{name}-{size}.png"] = page.screenshot(animations="disabled", caret="hide", **options)

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
            # The key is new every run: masked, so the picture changes only when the page does.
            shots[SCREENSHOTS / f"set-up-{size}.png"] = fresh.screenshot(
                full_page=True,
                animations="disabled",
                caret="hide",
                mask=[fresh.locator(".qr svg"), fresh.locator("#secret")],
                mask_color="#d7dce3",
            )
        finally:
            newcomer.close()
    finally:
        context.close()
    assert len(shots) == 4
    for path, picture in shots.items():
        assert picture.startswith(PNG) and len(picture) > 5_000, path
        keep(browser, path, picture)
        assert changed_pixels(browser, path.read_bytes(), picture) <= NOISE_PIXELS, path
