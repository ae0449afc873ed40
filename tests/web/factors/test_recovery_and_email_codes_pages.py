"""The pages of the backup-code, email-code and lost-phone paths (server-rendered, no JavaScript needed)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from tests.conftest import PASSWORD, sign_in
from tests.support.recovery import CONFIRM_CODE, SIGN_IN_CODE, add_email_method, latest_code, wait_for_subject
from twofold.crypto import otp
from twofold.store.models import RecoveryCode

CODE_IN_PAGE = re.compile(r"<code>([2-9a-z]{4}-[2-9a-z]{4})</code>")


def page_sign_in(client, member) -> str:
    response = client.post("/sign-in", data={"email": member.email, "password": PASSWORD})
    assert response.status_code == 200 and "/code" in str(response.url)
    return str(response.url).split("/sign-in/")[1].split("/")[0]


def turn_on_by_page(client, clock) -> tuple[bytes, list[str], str]:
    setup = client.post("/account/security/totp")
    secret = re.search(r'id="secret"[^>]*>([A-Z2-7 ]+)<', setup.text).group(1)
    enrollment_id = re.search(r'name="enrollment_id" value="([^"]+)"', setup.text).group(1)
    key = otp.from_b32(secret)
    page = client.post(
        "/account/security/totp/confirm",
        data={"enrollment_id": enrollment_id, "code": otp.totp(key, clock.now().timestamp())},
    )
    return key, CODE_IN_PAGE.findall(page.text), page.text


def test_turning_on_shows_the_codes_once_with_download_print_and_saved(client, make_user, clock):
    member = make_user()
    sign_in(client, member)
    _key, codes, page = turn_on_by_page(client, clock)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert "This is the only time they are shown" in page
    assert "Download as text" in page and "data-print" in page and '<script src="/static/print.js"></script>' in page
    assert "<script>" not in page  # the CSP forbids inline script; Print is wired by a static file
    assert 'href="/static/codes.css"' in page and "I have saved these backup codes" in page
    again = client.get("/account/security")
    assert not CODE_IN_PAGE.findall(again.text) and "10 of 10" in again.text


def test_download_is_a_text_file_of_the_codes_just_shown(client, anonymous, make_user, clock):
    member = make_user()
    sign_in(client, member)
    _key, codes, page = turn_on_by_page(client, clock)
    assert 'name="code"' not in page  # the forms carry no codes: the server kept the set for this session
    response = client.post("/account/security/recovery-codes/download")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["content-disposition"] == 'attachment; filename="twofold-backup-codes.txt"'
    assert all(code in response.text for code in codes) and member.email in response.text
    signed_out = anonymous.post("/account/security/recovery-codes/download", follow_redirects=False)
    assert signed_out.status_code == 303 and codes[0] not in signed_out.text


def test_download_and_saved_never_confirm_codes_the_client_sends(client, make_user, clock):
    """Codes typed into the forms are ignored: the pages are no oracle for guessed backup codes."""
    member = make_user(with_totp=True)  # codes made outside this session, so none is held for it
    other = make_user(with_totp=True)
    sign_in(client, member, clock)
    for codes in (member.recovery_codes, [*member.recovery_codes[:3], "aaaa-bbbb"], other.recovery_codes):
        download = client.post("/account/security/recovery-codes/download", data={"code": codes})
        assert download.status_code == 410, codes
        assert not any(code in download.text for code in codes)
        unticked = client.post("/account/security/recovery-codes/saved", data={"code": codes}, follow_redirects=False)
        assert unticked.status_code == 303 and not any(code in unticked.text for code in codes)


def test_the_set_shown_is_kept_for_that_session_only_until_saved(client, anonymous, make_user, clock):
    member = make_user()
    sign_in(client, member)
    key, codes, _page = turn_on_by_page(client, clock)
    member.totp_key = key
    clock.advance(seconds=30)
    sign_in(anonymous, member, clock)  # the same member in another browser
    clock.advance(seconds=30)
    elsewhere = anonymous.post("/account/security/recovery-codes/download", data={"code": codes})
    assert elsewhere.status_code == 410 and codes[1] not in elsewhere.text
    # A code used since is left out of the download.
    anonymous.post("/sign-out")
    flow = page_sign_in(anonymous, member)
    anonymous.post(f"/sign-in/{flow}/code", data={"method": "recovery_code", "code": codes[0]})
    after_use = client.post("/account/security/recovery-codes/download")
    assert codes[0] not in after_use.text and all(code in after_use.text for code in codes[1:])
    # Once saved, the set is gone for this session too.
    client.post("/account/security/recovery-codes/saved", data={"saved": "yes"})
    assert client.post("/account/security/recovery-codes/download").status_code == 410
    # A new set is kept again, but never beyond an hour.
    clock.advance(seconds=30)
    regenerated = client.post(
        "/account/security/recovery-codes", data={"password": PASSWORD, "code": member.code(clock)}
    )
    new_codes = CODE_IN_PAGE.findall(regenerated.text)
    assert len(new_codes) == 10 and all(
        code in client.post("/account/security/recovery-codes/download").text for code in new_codes
    )
    for _ in range(5):  # an hour and more, with the session kept alive (idle timeout 15 minutes)
        clock.advance(minutes=13)
        assert client.get("/account/security").status_code == 200
    expired = client.post("/account/security/recovery-codes/download", follow_redirects=False)
    assert expired.status_code == 410 and new_codes[0] not in expired.text


def test_the_saved_confirmation_must_be_ticked(client, make_user, clock):
    member = make_user()
    sign_in(client, member)
    _key, codes, _page = turn_on_by_page(client, clock)
    unticked = client.post("/account/security/recovery-codes/saved")
    assert unticked.status_code == 422 and "Tick the box" in unticked.text
    assert CODE_IN_PAGE.findall(unticked.text) == codes
    ticked = client.post("/account/security/recovery-codes/saved", data={"saved": "yes"})
    assert ticked.status_code == 200 and "Your backup codes are saved" in ticked.text


@pytest.mark.parametrize(
    ("used", "shown", "warning"),
    [
        (0, "10 of 10", None),
        (6, "4 of 10", None),
        (7, "3 of 10", "Only 3 backup codes left."),
        (9, "1 of 10", "Only 1 backup code left."),
        (10, "0 of 10", "You have no backup codes left."),
    ],
)
def test_the_count_is_shown_and_warns_at_three_or_fewer(client, make_user, clock, services, used, shown, warning):
    member = make_user(with_totp=True)
    sign_in(client, member, clock)
    with services.db.transaction() as s:
        ids = s.execute(select(RecoveryCode.id).where(RecoveryCode.user_id == member.id).limit(used)).scalars().all()
        s.execute(update(RecoveryCode).where(RecoveryCode.id.in_(ids)).values(used_at=clock.now()))
    page = client.get("/account/security").text
    assert f"<strong>{shown}</strong> backup codes left" in page
    if warning:
        assert 'id="codes-warning"' in page and warning in page and "Generate new codes now" in page
    else:
        assert 'id="codes-warning"' not in page


def test_generate_new_codes_from_the_page(client, make_user, clock, mailbox):
    member = make_user(with_totp=True)
    sign_in(client, member, clock)
    clock.advance(seconds=30)
    wrong = client.post("/account/security/recovery-codes", data={"password": PASSWORD, "code": "zzzz-zzzz"})
    assert wrong.status_code == 400 and 'id="regen-error"' in wrong.text
    page = client.post("/account/security/recovery-codes", data={"password": PASSWORD, "code": member.code(clock)})
    fresh = CODE_IN_PAGE.findall(page.text)
    assert len(fresh) == 10 and not set(fresh) & set(member.recovery_codes)
    assert "Your earlier codes no longer work" in page.text


def test_the_code_step_offers_a_backup_code_and_help_without_one(client, make_user, clock):
    member = make_user(with_totp=True)
    flow = page_sign_in(client, member)
    page = client.get(f"/sign-in/{flow}/code").text
    assert "Use a backup code instead" in page and 'value="recovery_code"' in page
    assert 'href="/help/lost-phone"' in page and "Email me a code" not in page
    wrong = client.post(f"/sign-in/{flow}/code", data={"method": "recovery_code", "code": "zzzz-zzzz"})
    assert wrong.status_code == 401 and "already used" in wrong.text
    assert 'value="totp"' in wrong.text and 'value="recovery_code"' in wrong.text  # every method still offered
    done = client.post(f"/sign-in/{flow}/code", data={"method": "recovery_code", "code": member.recovery_codes[0]})
    assert done.status_code == 200 and "<strong>9 of 10</strong>" in done.text


def test_the_lost_phone_page_says_what_to_do(client):
    page = client.get("/help/lost-phone")
    assert page.status_code == 200
    for step in (
        "Use a backup code instead",
        "Replace authenticator app",
        "practice admin",
        "reset two-factor authentication",
    ):
        assert step in page.text


def test_email_me_a_code_on_the_code_step(client, anonymous, make_user, clock, mailbox):
    member = make_user(with_totp=True)
    sign_in(client, member, clock)
    add_email_method(client, mailbox, member, clock)
    flow = page_sign_in(anonymous, member)
    page = anonymous.get(f"/sign-in/{flow}/code").text
    assert "Email me a code instead" in page
    sent = anonymous.post(f"/sign-in/{flow}/email-code")
    assert sent.status_code == 200 and f"We emailed a code to {member.email}" in sent.text
    assert re.search(r'<details\s+open>\s*<summary id="email-alt">', sent.text)
    again = anonymous.post(f"/sign-in/{flow}/email-code")
    assert again.status_code == 429 and "a moment ago" in again.text
    done = anonymous.post(f"/sign-in/{flow}/code", data={"method": "email", "code": latest_code(mailbox, member.email)})
    assert done.status_code == 200 and "Security" in done.text


def test_adding_and_removing_email_codes_by_page(client, make_user, clock, mailbox):
    member = make_user(with_totp=True)
    sign_in(client, member, clock)
    page = client.get("/account/security").text
    assert "NIST SP 800-63B-4" in page and "does not accept email" in page and "Add email codes" in page
    confirm = client.post("/account/security/email-method")
    assert confirm.status_code == 200 and "Confirm your email" in confirm.text
    wrong = client.post("/account/security/email-method/confirm", data={"code": "00000000"})
    assert wrong.status_code == 400 and "not right" in wrong.text
    code = latest_code(mailbox, member.email, CONFIRM_CODE)
    added = client.post("/account/security/email-method/confirm", data={"code": code})
    assert "Email codes are added" in added.text and "Remove email codes" in added.text
    clock.advance(seconds=30)
    removed = client.post(
        "/account/security/email-method/remove", data={"password": PASSWORD, "code": member.code(clock)}
    )
    assert "Email codes are removed" in removed.text and "Add email codes" in removed.text


def test_an_admin_is_told_email_codes_need_an_app_first(client, anonymous, make_user, clock, mailbox):
    admin = make_user(role="admin", with_totp=False)
    sign_in(client, admin)
    refused = client.post("/account/security/email-method")
    assert refused.status_code == 403 and "Practice admins must use an authenticator app" in refused.text
    assert not mailbox.to(admin.email)
    with_app = make_user(role="admin", with_totp=True)
    sign_in(anonymous, with_app, clock)
    assert "Add email codes" in anonymous.get("/account/security").text


def test_replace_the_app_by_page_after_signing_in_with_a_backup_code(client, anonymous, make_user, clock, mailbox):
    member = make_user(with_totp=True)
    flow = page_sign_in(client, member)
    client.post(f"/sign-in/{flow}/code", data={"method": "recovery_code", "code": member.recovery_codes[0]})
    setup = client.post("/account/security/totp/replace", data={"password": PASSWORD, "code": member.recovery_codes[1]})
    assert setup.status_code == 200 and "Set up your new authenticator app" in setup.text
    assert "keep working until this code is accepted" in setup.text
    secret = re.search(r'id="secret"[^>]*>([A-Z2-7 ]+)<', setup.text).group(1)
    enrollment_id = re.search(r'name="enrollment_id" value="([^"]+)"', setup.text).group(1)
    key = otp.from_b32(secret)
    wrong = client.post("/account/security/totp/confirm", data={"enrollment_id": enrollment_id, "code": "000000"})
    assert wrong.status_code == 400 and "Use this app" in wrong.text  # still the replacement wording
    done = client.post(
        "/account/security/totp/confirm",
        data={"enrollment_id": enrollment_id, "code": otp.totp(key, clock.now().timestamp())},
    )
    assert "Codes from the old app no longer work" in done.text and "<strong>8 of 10</strong>" in done.text
    wait_for_subject(mailbox, member.email, "Your authenticator app was replaced")


def test_turning_off_accepts_a_backup_code_on_the_page(client, make_user, clock):
    member = make_user(with_totp=True)
    sign_in(client, member, clock)
    page = client.post("/account/security/totp/disable", data={"password": PASSWORD, "code": member.recovery_codes[0]})
    assert "Two-factor authentication is off" in page.text


def test_a_sign_in_code_email_arrives_for_the_page_flow(anonymous, client, make_user, clock, mailbox):
    member = make_user(role="staff")
    sign_in(client, member)
    add_email_method(client, mailbox, member, clock)
    flow = page_sign_in(anonymous, member)
    page = anonymous.get(f"/sign-in/{flow}/code").text
    assert "Open your authenticator app" not in page and "Get a code by email" in page
    anonymous.post(f"/sign-in/{flow}/email-code")
    assert wait_for_subject(mailbox, member.email, SIGN_IN_CODE)
