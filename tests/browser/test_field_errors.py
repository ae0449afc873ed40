"""A refused form points at the field to fix: the field is marked aria-invalid, described by the
message beside it, and focused when the page comes back (WCAG 3.3.1 and 1.3.1)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_phone_size import signed_in_admin
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def expect_tied_and_focused(page, field_id: str, error_id: str, text: str) -> None:
    field = page.locator(f"#{field_id}")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    described = field.get_attribute("aria-describedby") or ""
    assert error_id in described.split(), described
    expect(page.locator(f"#{error_id}")).to_contain_text(text)


def test_a_wrong_backup_code_at_sign_in_marks_and_focuses_the_backup_code_field(page, make_user, accessibility):
    member = make_user(with_totp=True)
    page.goto("/sign-in")
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Use a backup code instead").click()
    accessibility.check(page)  # the opened backup-code section, reached without a load
    page.get_by_label("Backup code").fill("zzzz-zzzz")
    page.get_by_role("button", name="Use backup code").click()
    expect_tied_and_focused(page, "recovery-code", "code-error", "not right")
    hint = page.locator("#recovery-code").get_attribute("aria-describedby") or ""
    assert "recovery-code-hint" in hint.split()  # the example of a code stays announced with the error
    expect(page.locator("#code")).not_to_have_attribute("aria-invalid", "true")


@pytest.mark.parametrize(
    ("reason", "password", "code", "field", "text"),
    [
        ("", PASSWORD, "right", "reset-reason", "Give a reason"),
        ("Lost phone", "not-my-password", "right", "reset-password", "password is not right"),
        ("Lost phone", PASSWORD, "000000", "reset-code", "not right"),
        ("Lost phone", PASSWORD, "", "reset-code", "current code"),
    ],
    ids=["reason", "password", "code", "no-code"],
)
def test_a_refused_admin_reset_marks_and_focuses_the_field_to_fix(
    live_server, page, make_user, reason, password, code, field, text
):
    clock = live_server.clock
    admin = make_user(role="admin")
    member = make_user(with_totp=True)
    signed_in_admin(page, admin, clock)
    page.goto(f"/admin/members/{member.id}")
    page.get_by_text("Reset two-factor authentication (lost phone)").click()
    page.get_by_label("Reason (kept in the audit log and told to the member)").fill(reason)
    page.get_by_label("Your password").fill(password)
    page.get_by_label("Your authentication code").fill(admin.code(clock) if code == "right" else code)
    page.get_by_role("button", name="Reset two-factor authentication").click()
    expect_tied_and_focused(page, field, "reset-error", text)
    others = {"reset-reason", "reset-password", "reset-code"} - {field}
    for other in others:
        expect(page.locator(f"#{other}")).not_to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Reason (kept in the audit log and told to the member)")).to_have_value(reason)


def test_a_refused_policy_marks_and_focuses_the_setting_to_fix(live_server, page, make_user):
    admin = make_user(role="admin")
    signed_in_admin(page, admin, live_server.clock)
    page.goto("/admin/policy")
    grace = page.get_by_label("Grace period (days, 0 to 30)")
    grace.fill("45")
    page.get_by_role("button", name="Save policy").click()
    expect_tied_and_focused(page, "grace_days", "policy-error", "from 0 to 30")
    hint = page.locator("#grace_days").get_attribute("aria-describedby") or ""
    assert "grace_days-hint" in hint.split()

    # Roles that must use a security key, while no security key is allowed: the roles are the field.
    page.get_by_label("Grace period (days, 0 to 30)").fill("7")
    strict = page.locator("input[name=phishing_resistant_roles]")
    strict.first.check()
    webauthn = page.locator("input[name=allowed_methods][value=webauthn]")
    if webauthn.is_checked():
        webauthn.uncheck()
    page.get_by_role("button", name="Save policy").click()
    expect(strict.first).to_be_focused()
    for box in strict.all():
        expect(box).to_have_attribute("aria-invalid", "true")
        assert box.get_attribute("aria-describedby") == "policy-error"
    expect(page.locator("#policy-error")).to_contain_text("under Allowed methods")
    expect(page.locator("#grace_days")).not_to_have_attribute("aria-invalid", "true")
