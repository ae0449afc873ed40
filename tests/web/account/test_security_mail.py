"""Security emails sent by the remembered-browser and password-change use cases."""

from tests.conftest import PASSWORD, sign_in
from tests.support.recovery import wait_for_subject

NEW_PASSWORD = "a brand new passphrase"
CHROME = {
    "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
}


def test_remembering_a_browser_emails_the_account(client, make_user, clock, mailbox):
    member = make_user(with_totp=True)
    client.headers.update(CHROME)
    assert sign_in(client, member, clock, remember=True).status_code == 200
    [notice] = wait_for_subject(mailbox, member.email, "A browser was remembered for two-factor authentication")
    assert "30 days" in notice.text
    assert "Chrome" in notice.text and "on Windows" in notice.text


def test_signing_in_without_remembering_sends_no_browser_notice(client, make_user, clock, mailbox, services):
    member = make_user(with_totp=True)
    assert sign_in(client, member, clock).status_code == 200
    services.notifier.flush()
    assert not [m for m in mailbox.to(member.email) if "remembered" in m.subject]


def test_changing_the_password_emails_the_account(client, make_user, mailbox):
    member = make_user()
    assert sign_in(client, member).status_code == 200
    response = client.post(
        "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}, headers=CHROME
    )
    assert response.status_code == 200
    [notice] = wait_for_subject(mailbox, member.email, "Your password was changed")
    assert (
        "not you" in notice.text.lower() or "wasn't you" in notice.text.lower() or "was not you" in notice.text.lower()
    )
