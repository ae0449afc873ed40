"""Who may administer a practice: an admin with two-factor authentication of their own, on every
practice whatever its policy; a password alone opens no administration page or route."""

from __future__ import annotations

import pytest

from tests.support.base import sign_in
from tests.support.practice_admin import count_users
from tests.web.account.test_two_factor_required import enrol_through_api, require
from tests.web.practice.test_isolation import all_routes

ENROLMENT_URL = "/account/security#authenticator"


def admin_routes(app):
    """Every administration route, with its path parameters filled in."""
    for route in all_routes(app.routes):
        path = getattr(route, "path", "")
        if not path.startswith(("/api/v1/practice", "/admin")):
            continue
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                yield method, path, path.replace("{member_id}", "1").replace("{id}", "1")


def assert_refused_everywhere(app, client, practice_id, services):
    members_before = count_users(services, practice_id)
    checked = 0
    for method, path, url in admin_routes(app):
        label = f"{method} {path}"
        if path.startswith("/api/"):
            response = client.request(
                method, url, json={"email": "new@riverside.example", "name": "N", "role": "staff"}
            )
            assert response.status_code == 403, label
            assert response.json()["error"] == "admin_two_factor_required", label
            assert response.json()["enrolment_url"] == ENROLMENT_URL, label
        else:
            response = client.request(method, url, data={"email": "new@riverside.example"}, follow_redirects=False)
            assert response.status_code == 403, label
            assert f'href="{ENROLMENT_URL}"' in response.text, label
        checked += 1
    assert checked > 25
    assert count_users(services, practice_id) == members_before


@pytest.mark.parametrize("policy", ["no requirement", "required, inside the grace period"])
def test_an_admin_needs_their_own_two_factor_to_administer(client, app, make_user, services, practice, clock, policy):
    if policy != "no requirement":
        require(services, practice, grace_days=14)
    bare_admin = make_user(role="admin", with_totp=False)
    make_user(role="admin")  # another admin with 2FA, so the practice is not left without one
    assert sign_in(client, bare_admin).json() == {"status": "signed_in"}
    assert_refused_everywhere(app, client, practice.id, services)
    # The account's own pages stay open, so the admin can follow the link and turn 2FA on.
    assert client.get("/account/security").status_code == 200
    enrol_through_api(client, clock)
    assert client.get("/api/v1/practice/members").status_code == 200
    assert client.get("/admin/members").status_code == 200


def test_a_member_who_is_not_an_admin_is_simply_forbidden(client, make_user, clock):
    staff = make_user(role="staff", with_totp=True)
    assert sign_in(client, staff, clock).status_code == 200
    response = client.get("/api/v1/practice/members")
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    assert "enrolment_url" not in response.json()
