"""One-time set-up links, followed in a browser-like client: password first, then the app.
Valid 72 hours, used once, revoked by a newer link; every refusal is audited."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import PASSWORD, backends, sign_in
from tests.support.practice_admin import LINK, events, setup_path
from twofold.crypto import otp
from twofold.store.models import SetupLink
from twofold.web.app import create_app
from twofold.web.rendering import HOST_PREFIX, SESSION_COOKIE
from twofold.wiring import build_services

SECRET = re.compile(r'id="secret"[^>]*>([A-Z2-7 ]+)<')
ENROLLMENT = re.compile(r'name="enrollment_id" value="([0-9a-f]+)"')


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def invite(client, mailbox, email="new.nurse@riverside.example", name="New Nurse", role="staff") -> str:
    assert client.post("/api/v1/practice/members", json={"email": email, "name": name, "role": role}).status_code == 201
    return setup_path(mailbox.wait_for(1, to=email)[-1])


def app_step(response) -> tuple[bytes, str]:
    assert response.status_code == 200, response.text
    return otp.from_b32(SECRET.search(response.text).group(1).replace(" ", "")), ENROLLMENT.search(response.text).group(
        1
    )


def test_a_new_member_chooses_a_password_then_sets_up_the_app(client, anonymous, admin, mailbox, clock, services):
    link = invite(client, mailbox)
    page = anonymous.get(link)
    assert page.status_code == 200 and "choose a password" in page.text
    mismatch = anonymous.post(f"{link}/password", data={"password": PASSWORD, "password_again": PASSWORD + "x"})
    assert mismatch.status_code == 400 and "not the same" in mismatch.text
    short = anonymous.post(f"{link}/password", data={"password": "short", "password_again": "short"})
    assert short.status_code == 400 and "at least 12" in short.text
    key, enrollment_id = app_step(
        anonymous.post(f"{link}/password", data={"password": PASSWORD, "password_again": PASSWORD})
    )
    code = otp.totp(key, clock.now().timestamp())
    wrong = anonymous.post(
        f"{link}/confirm", data={"enrollment_id": enrollment_id, "code": f"{(int(code) + 1) % 10**6:06d}"}
    )
    assert wrong.status_code == 400 and "not right" in wrong.text and 'id="secret"' in wrong.text
    done = anonymous.post(f"{link}/confirm", data={"enrollment_id": enrollment_id, "code": code})
    assert done.status_code == 200 and "Two-factor authentication is on" in done.text
    used = anonymous.get(link)
    assert used.status_code == 410 and "already been used" in used.text
    clock.advance(seconds=30)
    flow = anonymous.post("/api/v1/sign-in", json={"email": "new.nurse@riverside.example", "password": PASSWORD}).json()
    assert flow["status"] == "second_factor_required"
    assert (
        anonymous.post(
            f"/api/v1/sign-in/{flow['flow_id']}/second-factor",
            json={"method": "totp", "code": otp.totp(key, clock.now().timestamp())},
        ).status_code
        == 200
    )
    names = [e.event for e in events(services) if e.subject_id == anonymous.get("/api/v1/me").json()["id"]]
    for expected in (
        "practice:member:setup_link_sent",
        "account:password:set",
        "account:two_factor:enabled",
        "practice:member:setup_link_used",
        "practice:member:setup_link_refused",
    ):
        assert expected in names


def test_a_link_works_for_72_hours(client, anonymous, admin, mailbox, clock, services):
    link = invite(client, mailbox)
    clock.advance(hours=71, minutes=59, seconds=59)
    assert anonymous.get(link).status_code == 200
    clock.advance(seconds=1)
    expired = anonymous.get(link)
    assert expired.status_code == 410 and "expired" in expired.text
    assert (
        anonymous.post(f"{link}/password", data={"password": PASSWORD, "password_again": PASSWORD}).status_code == 410
    )
    assert events(services, "practice:member:setup_link_refused")[-1].details["reason"] == "expired"


def test_a_link_is_used_once_even_from_two_browsers(client, anonymous, admin, make_user, mailbox, clock, app):
    from fastapi.testclient import TestClient

    link = invite(client, mailbox)
    key, enrollment_id = app_step(
        anonymous.post(f"{link}/password", data={"password": PASSWORD, "password_again": PASSWORD})
    )
    with TestClient(app, base_url="http://127.0.0.1") as second:
        # The second browser has the link but not the password step's set-up.
        assert second.get(link).status_code == 200
        code = otp.totp(key, clock.now().timestamp())
        assert anonymous.post(f"{link}/confirm", data={"enrollment_id": enrollment_id, "code": code}).status_code == 200
        clock.advance(seconds=30)
        again = second.post(
            f"{link}/confirm", data={"enrollment_id": enrollment_id, "code": otp.totp(key, clock.now().timestamp())}
        )
        assert again.status_code == 410 and "already been used" in again.text
        assert second.post(f"{link}/password", data={"password": PASSWORD}).status_code == 410


def test_a_newer_link_revokes_one_already_half_used(client, anonymous, admin, mailbox, clock, services):
    link = invite(client, mailbox)
    key, enrollment_id = app_step(
        anonymous.post(f"{link}/password", data={"password": PASSWORD, "password_again": PASSWORD})
    )
    member_id = client.get("/api/v1/practice/members", params={"q": "new.nurse"}).json()["items"][0]["id"]
    client.post(f"/api/v1/practice/members/{member_id}/setup-link")
    refused = anonymous.post(
        f"{link}/confirm", data={"enrollment_id": enrollment_id, "code": otp.totp(key, clock.now().timestamp())}
    )
    assert refused.status_code == 410 and "newer set-up link" in refused.text
    assert client.get(f"/api/v1/practice/members/{member_id}").json()["two_factor"]["enabled"] is False
    assert events(services, "practice:member:setup_link_refused")[-1].details["reason"] == "revoked"
    newer = setup_path(mailbox.wait_for(2, to="new.nurse@riverside.example")[-1])
    page = anonymous.get(newer)
    assert page.status_code == 200 and "enter your password" in page.text  # chosen already, so now it is asked


def test_a_member_with_a_password_must_enter_it_first(client, anonymous, admin, make_user, mailbox, clock, services):
    staff = make_user(role="staff")
    client.post(f"/api/v1/practice/members/{staff.id}/setup-link")
    link = setup_path(mailbox.wait_for(1, to=staff.email)[0])
    wrong = anonymous.post(f"{link}/password", data={"password": "not the password at all"})
    assert wrong.status_code == 400 and "not right" in wrong.text
    assert events(services, "account:sign_in:password_failed")[-1].details == {
        "reason": "wrong_password",
        "via": "setup_link",
    }
    key, enrollment_id = app_step(anonymous.post(f"{link}/password", data={"password": PASSWORD}))
    assert (
        anonymous.post(
            f"{link}/confirm", data={"enrollment_id": enrollment_id, "code": otp.totp(key, clock.now().timestamp())}
        ).status_code
        == 200
    )
    clock.advance(seconds=30)
    staff.totp_key = key
    assert sign_in(anonymous, staff, clock).status_code == 200


def test_links_of_deactivated_members_and_unknown_links_are_refused(client, anonymous, admin, make_user, mailbox):
    link = invite(client, mailbox)
    member_id = client.get("/api/v1/practice/members", params={"q": "new.nurse"}).json()["items"][0]["id"]
    client.patch(f"/api/v1/practice/members/{member_id}", json={"active": False})
    assert anonymous.get(link).status_code == 410
    assert anonymous.get("/setup/not-a-real-token").status_code == 404
    assert anonymous.get("/setup/" + "x" * 300).status_code == 404


def test_only_a_hash_of_the_link_is_stored(client, admin, mailbox, services):
    link = invite(client, mailbox)
    token = link.rsplit("/", 1)[1]
    with services.db.reading() as s:
        stored = s.execute(select(SetupLink.token_hash)).scalars().all()
    assert len(stored) == 1 and token not in stored[0] and len(stored[0]) == 64
    assert all(token not in str(e.details) for e in events(services))


@pytest.mark.parametrize("ended_by", ["newer_link", "expiry"])
def test_a_link_that_ended_never_shows_its_app_key_again(client, anonymous, admin, mailbox, clock, services, ended_by):
    link = invite(client, mailbox)
    page = anonymous.post(f"{link}/password", data={"password": PASSWORD, "password_again": PASSWORD})
    _key, enrollment_id = app_step(page)
    shown = SECRET.search(page.text).group(1)
    # While the link lives, a malformed code shows the same set-up again (the page's own promise).
    again = anonymous.post(f"{link}/confirm", data={"enrollment_id": enrollment_id, "code": "12ab"})
    assert again.status_code == 400 and shown in again.text
    if ended_by == "newer_link":
        member_id = client.get("/api/v1/practice/members", params={"q": "new.nurse"}).json()["items"][0]["id"]
        assert client.post(f"/api/v1/practice/members/{member_id}/setup-link").status_code == 200
    else:
        clock.advance(hours=73)
    gone = anonymous.post(f"{link}/confirm", data={"enrollment_id": enrollment_id, "code": "12ab"})
    assert gone.status_code == 410
    assert shown not in gone.text and shown.replace(" ", "") not in gone.text


def test_a_set_up_link_never_follows_the_requests_host(client, admin, mailbox, services):
    """A forged ``Host`` must not choose where a set-up link points (it is a credential)."""
    # On a host that is not local HTTP the session cookie carries its __Host- prefix: send it so, as a
    # browser would, so that the forged Host gets as far as making the link.
    session = client.cookies.get(SESSION_COOKIE)
    response = client.post(
        "/api/v1/practice/members",
        json={"email": "new.nurse@riverside.example", "name": "New Nurse", "role": "staff"},
        headers={"host": "evil.example", "cookie": f"{HOST_PREFIX}{SESSION_COOKIE}={session}"},
    )
    assert response.status_code == 201
    [message] = mailbox.wait_for(1, to="new.nurse@riverside.example")
    link = LINK.search(message.text).group(0)
    assert link.startswith(services.settings.resolved_public_origin() + "/setup/")
    assert "evil.example" not in message.text and "evil.example" not in message.html


def test_with_a_public_origin_every_link_points_there(services_for_origin, make_user, clock, mailbox):
    services = services_for_origin("https://signin.riverside.example")
    admin = make_user(role="admin", with_totp=True, email="admin@riverside.example")
    with TestClient(create_app(services), base_url="http://127.0.0.1") as client:
        assert sign_in(client, admin, clock).status_code == 200
        origin = {"origin": "https://signin.riverside.example"}
        body = {"email": "new.nurse@riverside.example", "name": "New Nurse", "role": "staff"}
        assert client.post("/api/v1/practice/members", json=body, headers=origin).status_code == 201
    [message] = mailbox.wait_for(1, to="new.nurse@riverside.example")
    assert LINK.search(message.text).group(0).startswith("https://signin.riverside.example/setup/")


@pytest.fixture
def services_for_origin(settings, clock, notifier):
    built = []

    def factory(origin: str):
        built.append(
            build_services(settings.model_copy(update={"public_origin": origin}), clock=clock, notifier=notifier)
        )
        return built[-1]

    yield factory
    for services in built:
        services.close()
