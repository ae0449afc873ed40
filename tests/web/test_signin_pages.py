"""The HTML pages: sign-in, the code step and Account Settings > Security, driven as
forms with the test client (the browser suite drives them in Chromium).
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import PASSWORD
from twofold.crypto import otp

HOME = "/account/security"
GROUPED_KEY = re.compile(r"\b((?:[A-Z2-7]{4} ){7}[A-Z2-7]{4})\b")


def form_sign_in(client, member, password: str = PASSWORD, next: str = ""):
    return client.post(
        "/sign-in", data={"email": member.email, "password": password, "next": next}, follow_redirects=False
    )


def hidden(page: str, name: str) -> str:
    match = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden {name}"
    return html.unescape(match.group(1))


def wrong_code(key: bytes, clock) -> str:
    near = {otp.totp(key, clock.now().timestamp() + 30 * d) for d in range(-10, 11)}
    return next(c for c in ("111111", "222222", "333333") if c not in near)


def set_up_app(client, clock) -> bytes:
    """Through the pages: open the set-up, read the key as a person would, confirm it."""
    page = client.post("/account/security/totp").text
    key = otp.from_b32(GROUPED_KEY.search(page).group(1))
    answer = client.post(
        "/account/security/totp/confirm",
        data={"enrollment_id": hidden(page, "enrollment_id"), "code": otp.totp(key, clock.now().timestamp())},
        follow_redirects=False,
    )
    # 2FA is on: the answer is the page that shows the new backup codes, once.
    assert answer.status_code == 200 and "Two-factor authentication is on" in answer.text
    assert len(re.findall(r"\b[a-z2-9]{4}-[a-z2-9]{4}\b", answer.text)) >= 10
    clock.advance(seconds=30)
    return key


# -- sign-in --------------------------------------------------------------------------


def test_the_sign_in_page_is_a_labelled_form(client):
    page = client.get("/sign-in")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert '<form method="post" action="/sign-in"' in text
    assert re.search(r'<input id="email" name="email" type="email" autocomplete="username webauthn"', text)
    assert re.search(r'<input id="password" name="password" type="password" autocomplete="current-password"', text)
    assert '<label for="email">' in text and '<label for="password">' in text
    assert '<html lang="en">' in text and '<link rel="stylesheet" href="/static/style.css">' in text


def test_a_wrong_password_and_an_unknown_email_show_the_same_message(client, make_user):
    member = make_user()
    wrong = form_sign_in(client, member, password="not the password")
    unknown = client.post("/sign-in", data={"email": "nobody@riverside.example", "password": "not the password"})
    assert wrong.status_code == unknown.status_code == 401
    message = '<p class="error" role="alert" id="sign-in-error">The email or password is not right.</p>'
    assert message in wrong.text and message in unknown.text
    assert f'value="{member.email}"' in wrong.text  # the email is kept, the password is not
    assert "not the password" not in wrong.text


def test_an_empty_form_asks_for_both_fields(client):
    page = client.post("/sign-in", data={"email": "", "password": ""})
    assert page.status_code == 422 and "Enter your email and your password." in page.text


def test_a_password_only_account_lands_on_the_security_page_with_two_factor_off(client, make_user):
    answer = form_sign_in(client, make_user())
    assert answer.status_code == 303 and answer.headers["location"] == HOME
    page = client.get(HOME)
    assert page.status_code == 200
    assert '<p class="status off"><strong>Off.</strong>' in page.text
    assert '<form method="post" action="/account/security/totp">' in page.text


def test_an_account_with_an_app_gets_the_code_step(client, make_user, clock):
    member = make_user(with_totp=True)
    answer = form_sign_in(client, member)
    assert answer.status_code == 303 and "twofold_session" not in answer.headers.get("set-cookie", "")
    code_page = answer.headers["location"]
    assert re.fullmatch(r"/sign-in/[A-Za-z0-9_-]+/code", code_page)
    assert client.get(HOME, follow_redirects=False).status_code == 303  # half signed in is not signed in

    page = client.get(code_page).text
    assert re.search(r'<input id="code" name="code" inputmode="numeric"[^>]*autocomplete="one-time-code"', page)
    assert f'action="{code_page}"' in page

    wrong = client.post(code_page, data={"code": wrong_code(member.totp_key, clock)}, follow_redirects=False)
    assert wrong.status_code == 401 and 'role="alert"' in wrong.text and "That code is not right" in wrong.text
    assert 'aria-describedby="code-error"' in wrong.text

    right = client.post(code_page, data={"code": member.code(clock)}, follow_redirects=False)
    assert right.status_code == 303 and right.headers["location"] == HOME
    assert '<p class="status on"><strong>On.</strong>' in client.get(HOME).text


def test_a_code_typed_with_a_space_is_accepted(client, make_user, clock):
    member = make_user(with_totp=True)
    code_page = form_sign_in(client, member).headers["location"]
    code = member.code(clock)
    answer = client.post(code_page, data={"code": f"{code[:3]} {code[3:]}"}, follow_redirects=False)
    assert answer.status_code == 303


@pytest.mark.parametrize(("advance_minutes", "status"), [(None, 404), (11, 410)], ids=["unknown", "expired"])
def test_a_gone_sign_in_says_to_start_again(client, make_user, clock, advance_minutes, status):
    member = make_user(with_totp=True)
    code_page = form_sign_in(client, member).headers["location"] if advance_minutes else "/sign-in/nosuchflow/code"
    if advance_minutes:
        clock.advance(minutes=advance_minutes)
    page = client.get(code_page)
    assert page.status_code == status
    assert '<a class="button" href="/sign-in">Go to sign-in</a>' in page.text


def test_throttled_code_step_says_how_long_to_wait(client, make_user, clock):
    member = make_user(with_totp=True)
    code_page = form_sign_in(client, member).headers["location"]
    for _ in range(5):
        client.post(code_page, data={"code": wrong_code(member.totp_key, clock)})
    assert client.post(code_page, data={"code": member.code(clock)}).status_code == 410  # five wrong codes end it
    code_page = form_sign_in(client, member).headers["location"]  # the password again: the account still waits
    page = client.post(code_page, data={"code": member.code(clock)})
    assert page.status_code == 429 and "Try again in 5 minutes" in page.text


def test_sign_out_ends_the_session_and_says_so(client, make_user):
    form_sign_in(client, make_user())
    answer = client.post("/sign-out", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/sign-in?notice=signed_out"
    assert "You are signed out." in client.get(answer.headers["location"]).text
    assert client.get(HOME, follow_redirects=False).status_code == 303


def test_the_home_page_sends_each_visitor_where_they_belong(client, make_user):
    assert client.get("/", follow_redirects=False).headers["location"] == "/sign-in"
    form_sign_in(client, make_user())
    assert client.get("/", follow_redirects=False).headers["location"] == HOME


# -- Account Settings > Security --------------------------------------------------------------


def test_the_set_up_page_shows_an_inline_qr_code_and_the_key_in_groups_of_four(client, make_user, practice):
    member = make_user()
    form_sign_in(client, member)
    page = client.post("/account/security/totp")
    assert page.status_code == 200
    text = page.text
    # The QR code is a link to the otpauth: address, named, so Tab reaches it (and a phone opens the app).
    link = re.search(
        r'<a class="qr" href="(otpauth://[^"]+)" aria-label="QR code for your authenticator app[^"]*">(.*?)</a>',
        text,
        re.S,
    )
    assert link is not None
    qr = link.group(2)
    assert qr.startswith("<svg") and "</svg>" in qr and "<img" not in text
    assert "<title>QR code for your authenticator app</title>" in qr
    grouped = GROUPED_KEY.search(text).group(1)
    assert len(grouped.replace(" ", "")) == 32
    assert grouped.replace(" ", "") in link.group(1)
    assert f'<code class="secret" id="secret" tabindex="0" aria-describedby="secret-about">{grouped}</code>' in text
    assert member.email in text and "6 digits" in text


def test_the_key_on_the_page_is_the_secret_of_the_pending_app(client, make_user, services):
    """The typed-out key and the otpauth URI behind the QR code carry the same secret."""
    member = make_user()
    form_sign_in(client, member)
    page = client.post("/account/security/totp").text
    grouped = GROUPED_KEY.search(page).group(1)
    with services.db.reading() as s:
        from twofold.store.models import User

        user = s.get(User, member.id)
    pending = services.totp_enrollment.pending_totp_enrollment(user=user, enrollment_id=hidden(page, "enrollment_id"))
    assert pending.secret == grouped.replace(" ", "")
    assert parse_qs(urlsplit(pending.otpauth_uri).query)["secret"] == [pending.secret]


def test_confirming_with_the_right_code_turns_two_factor_on(client, make_user, clock):
    form_sign_in(client, make_user())
    set_up_app(client, clock)
    page = client.get(f"{HOME}?notice=enabled").text
    assert "Two-factor authentication is on." in page and '<p class="status on"><strong>On.</strong>' in page
    assert "Authenticator app" in page


@pytest.mark.parametrize(
    ("code", "message"),
    [("wrong", "That code is not right"), ("abcdef", "digits only"), ("12345", "digits only")],
    ids=["wrong-code", "letters", "five-digits"],
)
def test_a_bad_confirming_code_shows_the_same_set_up_again_with_the_reason(client, make_user, clock, code, message):
    form_sign_in(client, make_user())
    page = client.post("/account/security/totp").text
    grouped = GROUPED_KEY.search(page).group(1)
    key = otp.from_b32(grouped)
    enrollment_id = hidden(page, "enrollment_id")
    code = wrong_code(key, clock) if code == "wrong" else code
    again = client.post("/account/security/totp/confirm", data={"enrollment_id": enrollment_id, "code": code})
    assert again.status_code == 400
    assert message in again.text and 'role="alert"' in again.text
    assert GROUPED_KEY.search(again.text).group(1) == grouped and hidden(again.text, "enrollment_id") == enrollment_id
    assert '<p class="status off">' in client.get(HOME).text


def test_setting_up_while_on_is_refused_with_a_page(client, make_user, clock):
    form_sign_in(client, make_user())
    set_up_app(client, clock)
    page = client.post("/account/security/totp")
    assert page.status_code == 409 and "already on" in page.text.lower()


def test_turning_off_asks_for_password_and_code_then_sign_in_needs_the_password_only(
    client, anonymous, make_user, clock
):
    member = make_user()
    form_sign_in(client, member)
    key = set_up_app(client, clock)
    page = client.get(HOME).text
    assert '<form method="post" action="/account/security/totp/disable"' in page

    wrong = client.post(
        "/account/security/totp/disable",
        data={"password": "not the password", "code": otp.totp(key, clock.now().timestamp())},
    )
    assert wrong.status_code == 400 and "The password is not right." in wrong.text
    assert "<details open>" in wrong.text  # the form stays open at the error
    bad_code = client.post(
        "/account/security/totp/disable", data={"password": PASSWORD, "code": wrong_code(key, clock)}
    )
    assert bad_code.status_code == 400 and "That code is not right" in bad_code.text

    right = client.post(
        "/account/security/totp/disable",
        data={"password": PASSWORD, "code": otp.totp(key, clock.now().timestamp())},
        follow_redirects=False,
    )
    assert right.status_code == 303 and right.headers["location"] == f"{HOME}?notice=disabled"
    assert "Two-factor authentication is off." in client.get(right.headers["location"]).text
    assert form_sign_in(anonymous, member).headers["location"] == HOME


# -- where sign-in leads ------------------------------------------------------------------------

ATTACKS = [
    "//evil.example",
    "//evil.example/account/security",
    "https://evil.example",
    "http://evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "javascript:alert(1)",
    "evil.example",
    "account/security",
]


@pytest.mark.parametrize("target", ATTACKS)
def test_next_never_leads_off_the_site(client, make_user, target):
    member = make_user()
    page = client.get("/sign-in", params={"next": target}).text
    assert hidden(page, "next") in ("", HOME)
    answer = form_sign_in(client, member, next=target)  # even when posted directly
    assert answer.status_code == 303 and answer.headers["location"] == HOME


def test_an_overlong_next_is_dropped(client):
    assert hidden(client.get("/sign-in", params={"next": "/" + "a" * 2048}).text, "next") == HOME


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example", "/\t/evil.example"])
def test_next_never_leads_off_the_site_after_the_code_step(client, make_user, clock, target):
    member = make_user(with_totp=True)
    code_page = form_sign_in(client, member, next=target).headers["location"]
    answer = client.post(code_page, data={"code": member.code(clock)}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == HOME


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example"])
def test_a_signed_in_visit_to_sign_in_never_leads_off_the_site(client, make_user, target):
    form_sign_in(client, make_user())
    answer = client.get("/sign-in", params={"next": target}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == HOME


def test_a_local_next_is_followed_through_the_code_step(client, make_user, clock):
    member = make_user(with_totp=True)
    code_page = form_sign_in(client, member, next="/account/security?tab=apps").headers["location"]
    answer = client.post(code_page, data={"code": member.code(clock)}, follow_redirects=False)
    assert answer.headers["location"] == "/account/security?tab=apps"


def test_the_security_page_sends_a_signed_out_visitor_to_sign_in_and_back(client, make_user):
    member = make_user()
    answer = client.get(HOME, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/sign-in?next=%2Faccount%2Fsecurity"
    page = client.get(answer.headers["location"]).text
    assert hidden(page, "next") == HOME
    assert form_sign_in(client, member, next=hidden(page, "next")).headers["location"] == HOME


def test_the_query_of_a_protected_page_survives_the_detour(client, make_user):
    answer = client.get(f"{HOME}?notice=enabled", follow_redirects=False)
    assert answer.headers["location"] == "/sign-in?next=%2Faccount%2Fsecurity%3Fnotice%3Denabled"
    page = client.get(answer.headers["location"]).text
    assert hidden(page, "next") == f"{HOME}?notice=enabled"


@pytest.mark.parametrize(
    "path", ["/account/security/totp", "/account/security/totp/confirm", "/account/security/totp/disable"]
)
def test_security_forms_need_a_session(client, path):
    answer = client.post(path, data={"code": "123456", "password": "x", "enrollment_id": "x"}, follow_redirects=False)
    # A form posted without a session goes to sign-in (with no Referer there is no page to return to).
    assert answer.status_code == 303 and answer.headers["location"].startswith("/sign-in")
