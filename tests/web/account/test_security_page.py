"""Every form on the Security page, as a member with 2FA on: each refusal answers a 4xx with
its message, on the whole page (methods, backup codes, browsers and sessions), never a 500."""

from __future__ import annotations

import html
import re

import pytest

from tests.support.base import PASSWORD, sign_in
from tests.support.recovery import add_email_method
from tests.web.support import browser, missing_sections, wrong_code

NEW_PASSWORD = "a completely new passphrase"
WRONG_PASSWORD = "not the password at all"


@pytest.fixture
def page(app):
    with browser(app) as client:
        yield client


@pytest.fixture
def member(page, make_user, clock):
    """A provider with an authenticator app, signed in on ``page``."""
    someone = make_user(with_totp=True)
    assert sign_in(page, someone, clock).status_code == 200
    clock.advance(seconds=30)  # the sign-in code is spent
    return someone


@pytest.fixture
def member_with_email(member, page, mailbox, clock):
    add_email_method(page, mailbox, member, clock)
    return member


def reauth(member, clock, *, password=True, code="right") -> dict:
    return {
        "password": PASSWORD if password is True else password or "",
        "code": {"right": member.code(clock), "wrong": wrong_code(member, clock), "none": ""}[code],
    }


def assert_whole_page(response, status: int, message: str | None, error_id: str) -> None:
    """``status``, the whole Security page, and ``message`` (or, for the service's own words, any) by the form."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    shown = re.search(f'id="{error_id}">([^<]+)<', response.text)
    assert shown, f"no message in #{error_id}"
    if message is not None:
        assert shown.group(1) == html.escape(message)
    assert missing_sections(response.text) == []


# -- change password -----------------------------------------------------------------------------


PASSWORD_REFUSALS = [
    pytest.param({}, 422, "Enter your current password and a new one.", id="empty"),
    pytest.param(
        {"current_password": PASSWORD}, 422, "Enter your current password and a new one.", id="no-new-password"
    ),
    pytest.param(
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD + "!"},
        422,
        "The two new passwords are not the same.",
        id="new-passwords-differ",
    ),
    pytest.param(
        {"current_password": WRONG_PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
        401,
        "The current password is not right.",
        id="wrong-current-password",
    ),
    pytest.param(
        {"current_password": PASSWORD, "new_password": PASSWORD, "new_password_confirm": PASSWORD},
        422,
        "The new password must differ from the current one.",
        id="same-password",
    ),
]


@pytest.mark.parametrize(("form", "status", "message"), PASSWORD_REFUSALS)
def test_a_refused_password_change_shows_the_whole_page(page, member, form, status, message):
    assert_whole_page(page.post("/account/security/password", data=form), status, message, "password-error")


def test_a_throttled_password_change_shows_the_whole_page(page, member):
    form = {"current_password": WRONG_PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}
    for _ in range(20):
        response = page.post("/account/security/password", data=form)
        if response.status_code == 429:
            break
        assert response.status_code == 401
    assert response.status_code == 429
    assert 'id="password-error"' in response.text and missing_sections(response.text) == []


# -- the re-authenticated changes: turn off 2FA, new backup codes, replace the app, remove email codes ----------

# (form action, error element id, status when empty / wrong password / wrong code, "enter both" message)
REAUTH_FORMS = {
    "turn-off-2fa": (
        "/account/security/totp/disable",
        "disable-error",
        (400, 400, 400),
        "Enter your password and the 6-digit code your app shows now (or a backup code).",
    ),
    "new-backup-codes": (
        "/account/security/recovery-codes",
        "regen-error",
        (422, 401, 400),
        "Enter your password and a code.",
    ),
    "replace-app": (
        "/account/security/totp/replace",
        "replace-error",
        (422, 401, 400),
        "Enter your password and a code.",
    ),
    "remove-email-codes": (
        "/account/security/email-method/remove",
        "email-remove-error",
        (422, 401, 400),
        "Enter your password and a code.",
    ),
}


@pytest.mark.parametrize("form", REAUTH_FORMS)
@pytest.mark.parametrize("refusal", ["empty", "no-code", "wrong-password", "wrong-code"])
def test_a_refused_confirmation_shows_the_whole_page(page, member_with_email, clock, form, refusal):
    action, error_id, (empty, wrong_password, wrong_code_status), enter_both = REAUTH_FORMS[form]
    data, status, message = {
        "empty": ({}, empty, enter_both),
        "no-code": (reauth(member_with_email, clock, code="none"), empty, enter_both),
        "wrong-password": (reauth(member_with_email, clock, password=WRONG_PASSWORD), wrong_password, None),
        "wrong-code": (reauth(member_with_email, clock, code="wrong"), wrong_code_status, None),
    }[refusal]
    assert_whole_page(page.post(action, data=data), status, message, error_id)


def test_a_refused_confirmation_changes_nothing(page, member_with_email, clock, services):
    before = page.get("/account/security").text
    for action, *_ in REAUTH_FORMS.values():
        page.post(action, data=reauth(member_with_email, clock, code="wrong"))
    after = page.get("/account/security")
    assert after.status_code == 200 and "10 of 10" in after.text and "Remove email codes" in after.text
    assert ("Turn off two-factor authentication" in before) and ("Turn off two-factor authentication" in after.text)


# -- codes by email ---------------------------------------------------------------------------------------


def test_email_me_a_code_without_email_codes_shows_the_whole_page(page, member):
    response = page.post("/account/security/email-code")
    assert_whole_page(
        response, 409, "Email codes are not one of your sign-in methods: use your app or a backup code.", "email-error"
    )


def test_email_me_a_code_too_soon_shows_the_whole_page(page, member_with_email):
    assert page.post("/account/security/email-code", follow_redirects=False).status_code == 303
    response = page.post("/account/security/email-code")
    assert response.status_code == 429
    assert 'id="email-error"' in response.text and missing_sections(response.text) == []


def test_confirming_email_codes_already_added_shows_the_whole_page(page, member_with_email):
    response = page.post("/account/security/email-method/confirm", data={"code": "12345678"})
    assert_whole_page(response, 409, None, "email-error")


def test_confirming_email_codes_with_nothing_pending_asks_for_a_code_again(page, member):
    response = page.post("/account/security/email-method/confirm", data={"code": "12345678"})
    assert response.status_code == 400
    assert 'action="/account/security/email-method/confirm"' in response.text and 'role="alert"' in response.text


def test_adding_email_codes_twice_is_refused_with_a_message(page, member_with_email):
    # Its own page: the refusal is not about any field of the Security page.
    response = page.post("/account/security/email-method")
    assert response.status_code == 409
    assert "Email codes not added" in response.text and 'href="/account/security"' in response.text


def test_a_wrong_emailed_code_asks_again_on_the_code_page(page, member, mailbox):
    assert page.post("/account/security/email-method").status_code == 200
    response = page.post("/account/security/email-method/confirm", data={"code": "00000000"})
    assert response.status_code == 400
    assert re.search(r'id="confirm-email-error">[^<]*not right', response.text)
    assert 'action="/account/security/email-method/confirm"' in response.text


# -- sessions and remembered browsers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    ["/account/security/sessions/999999/end", "/account/security/remembered-browsers/999999/forget"],
    ids=["end-session", "forget-browser"],
)
def test_ending_what_is_not_yours_answers_404_with_a_message(page, member, action):
    response = page.post(action)
    assert response.status_code == 404
    assert 'class="error"' in response.text or "not found" in response.text.lower()


@pytest.mark.parametrize(
    "action",
    [
        "/account/security/sessions/0/end",
        "/account/security/sessions/x/end",
        "/account/security/remembered-browsers/-1/forget",
        "/account/security/remembered-browsers/99999999999999999999/forget",
    ],
)
def test_a_malformed_id_answers_422(page, member, action):
    assert page.post(action).status_code == 422


# -- the page itself -----------------------------------------------------------------------------------------------


def test_the_page_shows_every_section(page, member):
    response = page.get("/account/security")
    assert response.status_code == 200 and missing_sections(response.text) == []
