"""The Security page in Chromium, as a member uses it: every form that fails opens again with the
error beside the field, the field marked invalid and described by the error, and focus on it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def signed_in_with_an_app(page, member, clock) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Authentication code").fill(member.code(clock))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Security", exact=True)).to_be_visible()
    clock.advance(seconds=30)


def expect_error_on(page, field_id: str, error_id: str, text: str) -> None:
    """The field is focused, in view, marked invalid, and described by the error shown beside it."""
    field = page.locator(f"#{field_id}")
    error = page.locator(f"#{error_id}")
    expect(error).to_contain_text(text)
    expect(error).to_be_in_viewport()
    expect(field).to_be_focused()
    expect(field).to_be_in_viewport()
    expect(field).to_have_attribute("aria-invalid", "true")
    assert error_id in field.get_attribute("aria-describedby").split()
    # Beside the field: the error sits between the field's label and the field itself.
    label_box = page.locator(f"label[for={field_id}]").bounding_box()
    error_box, field_box = error.bounding_box(), field.bounding_box()
    assert label_box["y"] < error_box["y"] < field_box["y"], (label_box, error_box, field_box)
    assert field_box["y"] - error_box["y"] < 120


@pytest.fixture
def small_screen(context):
    """A laptop's height, so that the lower forms start below the fold."""
    page = context.new_page()
    page.set_viewport_size({"width": 1000, "height": 640})
    return page


def test_turn_off_with_a_five_digit_code_reopens_the_form_at_the_code(live_server, small_screen, make_user):
    page, clock = small_screen, live_server.clock
    member = make_user(with_totp=True)
    signed_in_with_an_app(page, member, clock)
    page.locator("summary", has_text="Turn off two-factor authentication").click()
    page.locator("#disable-password").fill(member.password)
    page.locator("#disable-code").fill(member.code(clock)[:5])
    page.get_by_role("button", name="Turn off two-factor authentication").click()
    expect(page.get_by_text("Something needs attention")).to_have_count(0)
    expect_error_on(page, "disable-code", "disable-error", "Enter a code")
    expect(page.locator("#disable-password")).not_to_have_attribute("aria-invalid", "true")

    # The password again (a browser never keeps it), then the whole code, from the keyboard.
    page.locator("#disable-password").fill(member.password)
    page.keyboard.press("Tab")
    expect(page.locator("#disable-code")).to_be_focused()
    page.keyboard.type(member.code(clock))
    page.keyboard.press("Enter")
    expect(page.get_by_text("Two-factor authentication is off.")).to_be_visible()


def test_a_wrong_password_for_new_backup_codes_is_shown_at_the_password(live_server, small_screen, make_user):
    page, clock = small_screen, live_server.clock
    member = make_user(with_totp=True)
    signed_in_with_an_app(page, member, clock)
    page.locator("summary", has_text="Generate new codes").click()
    page.locator("#regen-password").fill("not my password at all")
    page.locator("#regen-code").fill(member.code(clock))
    page.get_by_role("button", name="Generate new codes").click()
    expect_error_on(page, "regen-password", "regen-error", "password")


def test_a_wrong_code_to_replace_the_app_is_shown_at_the_code(live_server, small_screen, make_user):
    page, clock = small_screen, live_server.clock
    member = make_user(with_totp=True)
    signed_in_with_an_app(page, member, clock)
    page.locator("summary", has_text="Replace authenticator app").click()
    page.locator("#replace-password").fill(member.password)
    page.locator("#replace-code").fill("000000" if member.code(clock) != "000000" else "111111")
    page.get_by_role("button", name="Replace authenticator app").click()
    expect_error_on(page, "replace-code", "replace-error", "not right")


def test_new_passwords_that_differ_are_shown_at_the_second(live_server, small_screen, make_user):
    page, clock = small_screen, live_server.clock
    member = make_user(with_totp=True)
    signed_in_with_an_app(page, member, clock)
    page.locator("summary", has_text="Change your password").click()
    page.get_by_label("Current password").fill(member.password)
    page.get_by_label("New password", exact=True).fill("a quite long new password")
    page.get_by_label("New password again").fill("a quite long new passwort")
    page.get_by_role("button", name="Change password").click()
    expect_error_on(page, "new-password-confirm", "password-error", "not the same")
    assert re.search(r"new-password-hint", page.locator("#new-password").get_attribute("aria-describedby"))


def _luminance(rgb: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(part) for part in re.findall(r"\d+", rgb)[:3])
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def test_the_focus_ring_stands_out_three_to_one_from_the_keyboard(live_server, page):
    page.goto("/sign-in")
    for _ in range(5):  # the skip link, the brand, then the first field
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.tagName") == "INPUT":
            break
    focused = page.evaluate("document.activeElement.id")
    ring = page.evaluate("getComputedStyle(document.activeElement).outlineColor")
    style = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    behind = page.evaluate("getComputedStyle(document.activeElement.closest('.card') || document.body).backgroundColor")
    lighter, darker = sorted((_luminance(ring), _luminance(behind)), reverse=True)
    assert focused and style == "solid"
    assert (lighter + 0.05) / (darker + 0.05) >= 3, (focused, ring, behind)
