"""The pages: "Remember this browser" on the code step, Account Settings > Security, and the
return to where the user was after an idle sign-out."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update

from tests.conftest import PASSWORD
from twofold.store.models import Practice

NEW_PASSWORD = "a completely new passphrase"


def password_step(client, member, next_path: str = ""):
    return client.post(
        "/sign-in", data={"email": member.email, "password": PASSWORD, "next": next_path}, follow_redirects=False
    )


def code_step(client, flow_location: str, member, clock, remember: bool = False):
    data = {"code": member.code(clock), "method": "totp"}
    if remember:
        data["remember_browser"] = "1"
    return client.post(flow_location, data=data, follow_redirects=False)


def sign_in_with_code(client, member, clock, remember=False, next_path=""):
    flow = password_step(client, member, next_path)
    assert flow.status_code == 303 and flow.headers["location"].endswith("/code")
    done = code_step(client, flow.headers["location"], member, clock, remember)
    clock.advance(seconds=30)
    return done


def set_policy(services, practice_id, **values):
    with services.db.transaction() as s:
        s.execute(update(Practice).where(Practice.id == practice_id).values(**values))


# -- the code step ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "text"),
    [
        (30, "Remember this browser for 30 days"),
        (7, "Remember this browser for 7 days"),
        (1, "Remember this browser for 1 day"),
    ],
)
def test_the_code_step_offers_to_remember_the_browser_for_the_policy_days(
    client, make_user, services, practice, days, text
):
    set_policy(services, practice.id, remember_browser_days=days)
    member = make_user(with_totp=True)
    page = client.get(password_step(client, member).headers["location"])
    assert text in page.text and 'name="remember_browser"' in page.text


def test_no_checkbox_when_the_practice_remembers_no_browser(client, make_user, services, practice):
    set_policy(services, practice.id, remember_browser_days=0)
    member = make_user(with_totp=True)
    page = client.get(password_step(client, member).headers["location"])
    assert "Remember this browser" not in page.text and "remember_browser" not in page.text


def test_a_wrong_code_keeps_the_box_ticked(client, make_user, clock):
    member = make_user(with_totp=True)
    location = password_step(client, member).headers["location"]
    wrong = "000000" if member.code(clock) != "000000" else "111111"
    page = client.post(location, data={"code": wrong, "method": "totp", "remember_browser": "1"})
    assert page.status_code == 401
    assert re.search(r'name="remember_browser" value="1"\s+checked', page.text)


def test_ticking_remember_skips_the_code_at_the_next_sign_in(client, make_user, clock):
    member = make_user(with_totp=True)
    done = sign_in_with_code(client, member, clock, remember=True)
    assert done.status_code == 303
    assert any(c.startswith("twofold_rb_") for c in done.headers.get_list("set-cookie"))
    client.post("/sign-out")
    again = password_step(client, member, "/account/security")
    assert again.status_code == 303 and again.headers["location"] == "/account/security"


def test_not_ticking_remember_asks_the_code_next_time(client, make_user, clock):
    member = make_user(with_totp=True)
    sign_in_with_code(client, member, clock)
    client.post("/sign-out")
    assert password_step(client, member).headers["location"].endswith("/code")


# -- after an idle sign-out, back to where the user was -----------------------------------


def test_after_the_idle_end_sign_in_returns_to_the_page_through_the_code_step(client, make_user, clock):
    member = make_user(with_totp=True)
    sign_in_with_code(client, member, clock)
    clock.advance(minutes=16)
    bounced = client.get("/account/security?notice=enabled", follow_redirects=False)
    assert bounced.status_code == 303
    target = parse_qs(urlsplit(bounced.headers["location"]).query)["next"][0]
    assert target == "/account/security?notice=enabled"
    sign_in_page = client.get(bounced.headers["location"])
    assert 'value="/account/security?notice=enabled"' in sign_in_page.text
    done = sign_in_with_code(client, member, clock, next_path=target)
    assert done.headers["location"] == "/account/security?notice=enabled"
    assert client.get(done.headers["location"]).status_code == 200


def test_a_form_sent_after_the_idle_end_returns_to_the_page_it_was_on(client, make_user, clock):
    member = make_user(with_totp=True)
    sign_in_with_code(client, member, clock)
    clock.advance(minutes=16)
    response = client.post(
        "/account/security/sessions/end-others",
        headers={"referer": "http://127.0.0.1/account/security"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/sign-in?next=%2Faccount%2Fsecurity"


def test_a_form_from_another_site_is_not_a_return_target(client, make_user, clock):
    sign_in_with_code(client, make_user(with_totp=True), clock)
    clock.advance(minutes=16)
    response = client.post(
        "/account/security/sessions/end-others", headers={"referer": "https://evil.example/x"}, follow_redirects=False
    )
    assert response.headers["location"] == "/sign-in"


def test_the_timed_out_notice_is_shown(client):
    page = client.get("/sign-in?notice=timed_out&next=%2Faccount%2Fsecurity")
    assert "signed out after a period without activity" in page.text


def test_signed_in_pages_carry_the_idle_warning_and_the_sign_in_page_does_not(client, make_user, services):
    assert 'id="idle-warning"' not in client.get("/sign-in").text
    services.settings.idle_check_seconds = 2.5
    client.post("/sign-in", data={"email": make_user().email, "password": PASSWORD})
    page = client.get("/account/security").text
    assert 'id="idle-warning"' in page and "Stay signed in" in page
    assert 'data-poll-seconds="2.5"' in page and 'data-return-to="/account/security"' in page
    assert '<script src="/static/session-timeout.js" defer></script>' in page
    assert "signed out after 15 minutes" in page
    assert client.get("/static/session-timeout.js").status_code == 200


# -- Account Settings > Security ------------------------------------------------------------


def test_the_security_page_lists_sessions_and_browsers_marking_this_one(client, anonymous, make_user, clock):
    member = make_user(with_totp=True)
    anonymous.headers["user-agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/130.0 Safari/537.36"
    sign_in_with_code(anonymous, member, clock, remember=True)
    client.headers["user-agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    sign_in_with_code(client, member, clock, remember=True)
    page = client.get("/account/security").text
    assert page.count('class="pill current">This session') == 1 and page.count('class="pill current">This browser') == 1
    assert "Chrome on Windows" in page and "Firefox on Linux" in page
    sessions = page[page.index('id="sessions"') :]
    assert sessions.index("Firefox on Linux") < sessions.index("This session") < sessions.index("Chrome on Windows")
    assert "Sign out all other sessions" in page and "Sign out everywhere" in page and "Forget all browsers" in page


def _row_id(page: str, kind: str, label: str) -> str:
    for match in re.finditer(rf'<tr data-{kind}-id="(\d+)">(.*?)</tr>', page, re.S):
        if label in match.group(2):
            return match.group(1)
    raise AssertionError(f"no {kind} row for {label}")


def test_forgetting_another_browser_from_the_page(client, anonymous, make_user, clock):
    member = make_user(with_totp=True)
    anonymous.headers["user-agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/130.0 Safari/537.36"
    sign_in_with_code(anonymous, member, clock, remember=True)
    sign_in_with_code(client, member, clock)
    browser_id = _row_id(client.get("/account/security").text, "browser", "Chrome on Windows")
    page = client.post(f"/account/security/remembered-browsers/{browser_id}/forget")
    assert (
        "That browser is forgotten" in page.text
        and "Chrome on Windows" not in page.text.split('id="remembered-browsers"')[1].split("</section>")[0]
    )
    anonymous.post("/sign-out")
    assert password_step(anonymous, member).headers["location"].endswith("/code")


def test_signing_out_another_session_from_the_page(client, anonymous, make_user):
    member = make_user()
    anonymous.headers["user-agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/130.0 Safari/537.36"
    client.post("/sign-in", data={"email": member.email, "password": PASSWORD})
    anonymous.post("/sign-in", data={"email": member.email, "password": PASSWORD})
    session_id = _row_id(client.get("/account/security").text, "session", "Chrome on Windows")
    assert "That session is signed out" in client.post(f"/account/security/sessions/{session_id}/end").text
    assert anonymous.get("/account/security", follow_redirects=False).status_code == 303


def test_signing_out_this_session_from_the_page(client, make_user):
    client.post("/sign-in", data={"email": make_user().email, "password": PASSWORD})
    session_id = _row_id(client.get("/account/security").text, "session", "This session")
    response = client.post(f"/account/security/sessions/{session_id}/end", follow_redirects=False)
    assert response.headers["location"] == "/sign-in?notice=signed_out"
    assert client.get("/account/security", follow_redirects=False).status_code == 303


def test_sign_out_others_and_sign_out_everywhere_from_the_page(client, anonymous, make_user):
    member = make_user()
    for browser in (client, anonymous):
        browser.post("/sign-in", data={"email": member.email, "password": PASSWORD})
    assert "Every other session is signed out" in client.post("/account/security/sessions/end-others").text
    assert anonymous.get("/account/security", follow_redirects=False).status_code == 303
    anonymous.post("/sign-in", data={"email": member.email, "password": PASSWORD})
    response = client.post("/account/security/sessions/end-all", follow_redirects=False)
    assert response.headers["location"] == "/sign-in?notice=signed_out_everywhere"
    assert "twofold_session=" in response.headers["set-cookie"]
    for browser in (client, anonymous):
        assert browser.get("/account/security", follow_redirects=False).status_code == 303


def test_forget_all_browsers_from_the_page(client, make_user, clock):
    member = make_user(with_totp=True)
    sign_in_with_code(client, member, clock, remember=True)
    page = client.post("/account/security/remembered-browsers/forget-all")
    assert "Every remembered browser is forgotten" in page.text
    client.post("/sign-out")
    assert password_step(client, member).headers["location"].endswith("/code")


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        (
            {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD + "x"},
            422,
            "The two new passwords are not the same.",
        ),
        (
            {"current_password": "wrong password", "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
            401,
            "The current password is not right.",
        ),
        (
            {"current_password": PASSWORD, "new_password": "short", "new_password_confirm": "short"},
            422,
            "at least 12 characters",
        ),
        (
            {"current_password": "", "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
            422,
            "Enter your current password and a new one.",
        ),
    ],
    ids=["mismatch", "wrong-current", "too-short", "empty"],
)
def test_password_change_errors_are_shown_on_the_page(client, make_user, form, status, message):
    client.post("/sign-in", data={"email": make_user().email, "password": PASSWORD})
    page = client.post("/account/security/password", data=form)
    assert page.status_code == status and message in page.text
    assert "<details open>" in page.text  # the password section stays open on its error


def test_password_change_from_the_page(client, anonymous, make_user, mailbox):
    member = make_user()
    for browser in (client, anonymous):
        browser.post("/sign-in", data={"email": member.email, "password": PASSWORD})
    page = client.post(
        "/account/security/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
    )
    assert page.status_code == 200 and "Your password is changed" in page.text
    assert anonymous.get("/account/security", follow_redirects=False).status_code == 303
    assert mailbox.wait_for(1, to=member.email)
