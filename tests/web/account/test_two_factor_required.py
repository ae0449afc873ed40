"""Required 2FA, with the clock: inside the grace period a member may skip enrolment; after it,
nothing but enrolment is open to them, on any page or API route."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, backends, sign_in
from tests.support.practice_admin import events
from tests.web.practice.test_isolation import all_routes
from twofold.context import RequestContext
from twofold.crypto import otp
from twofold.web.protocols.oidc import CREDENTIAL_PATHS

# The routes a member who must enrol can still use: setting up the app or email codes, the
# prompt itself, and the idle-timeout plumbing every signed-in page polls.
ENROLMENT = {
    ("POST", "/api/v1/me/totp"),
    ("POST", "/api/v1/me/totp/confirm"),
    ("POST", "/account/security/totp"),
    ("POST", "/account/security/totp/confirm"),
    ("POST", "/api/v1/me/email-method"),
    ("POST", "/api/v1/me/email-method/confirm"),
    ("POST", "/account/security/email-method"),
    ("POST", "/account/security/email-method/confirm"),
    ("POST", "/api/v1/me/webauthn/registration/options"),
    ("POST", "/api/v1/me/webauthn/registration"),
    ("POST", "/account/security/webauthn"),
    ("GET", "/api/v1/me/session"),
    ("POST", "/api/v1/me/session/keep-alive"),
    ("GET", "/account/two-factor"),
    ("POST", "/account/two-factor/skip"),
}


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def require(services, practice, **changes):
    services.policies.update(
        practice_id=practice.id,
        actor_id=None,
        changes={"require_two_factor": True, **changes},
        context=RequestContext(),
    )


def enrol_through_api(client, clock):
    enrollment = client.post("/api/v1/me/totp").json()
    key = otp.from_b32(enrollment["secret"])
    response = client.post(
        "/api/v1/me/totp/confirm",
        json={"enrollment_id": enrollment["enrollment_id"], "code": otp.totp(key, clock.now().timestamp())},
    )
    assert response.status_code == 200
    return key


def signed_in_routes(app, anonymous):
    """Every route that needs a session: the ones a signed-out request is refused on."""
    found = []
    for route in all_routes(app.routes):
        path = getattr(route, "path", "")
        for method in sorted(getattr(route, "methods", None) or ()):
            # The OpenID Connect endpoints apps call (token, userinfo, ...) take client credentials or a
            # bearer token, never the session: their 401 is the app's, not a signed-out member's.
            if method == "HEAD" or path.startswith("/static") or path in CREDENTIAL_PATHS:
                continue
            url = (
                path.replace("{member_id}", "1").replace("{flow_id}", "x").replace("{token}", "x").replace("{id}", "1")
            )
            response = anonymous.request(method, url, json={}, follow_redirects=False)
            needs_session = response.status_code == 401 or (
                # A signed-out GET goes to sign-in with ?next=; a form post goes there with ?next= only
                # when a Referer names the page it came from.
                response.status_code == 303
                and (
                    response.headers["location"].startswith("/sign-in?next=")
                    or (method != "GET" and response.headers["location"] == "/sign-in")
                )
            )
            if needs_session:
                found.append((method, path, url))
    return found


def test_inside_the_grace_period_a_member_is_prompted_at_sign_in_and_may_skip(
    client, make_user, services, practice, clock
):
    require(services, practice, grace_days=7)
    staff = make_user(role="staff")
    signed = client.post(
        "/sign-in",
        data={"email": staff.email, "password": PASSWORD, "next": "/account/security"},
        follow_redirects=False,
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/account/two-factor?next=%2Faccount%2Fsecurity"
    prompt = client.get("/account/two-factor?next=/account/security")
    assert prompt.status_code == 200 and "Skip for now" in prompt.text and "7 days left" in prompt.text
    skipped = client.post("/account/two-factor/skip", data={"next": "/account/security"}, follow_redirects=False)
    assert skipped.status_code == 303 and skipped.headers["location"] == "/account/security"
    assert client.get("/account/security").status_code == 200
    assert client.get("/api/v1/me").status_code == 200
    assert events(services, "account:two_factor:enrolment_skipped")[-1].subject_id == staff.id


def test_after_the_grace_period_only_enrolment_is_open(client, anonymous, app, make_user, services, practice, clock):
    routes = signed_in_routes(app, anonymous)
    assert ("GET", "/api/v1/me", "/api/v1/me") in routes and ("GET", "/admin/members", "/admin/members") in routes
    require(services, practice, grace_days=7)
    member = make_user(
        role="admin", with_totp=False
    )  # an admin, so the admin routes are gated too and not just forbidden
    make_user(role="admin", with_totp=True)  # another admin, so the practice is not locked out meanwhile
    clock.advance(days=7, seconds=1)
    assert sign_in(client, member).json() == {"status": "signed_in"}
    for method, path, url in routes:
        if (method, path) in ENROLMENT:
            continue
        response = client.request(method, url, json={}, follow_redirects=False)
        label = f"{method} {path}"
        if path.startswith("/api/"):
            assert response.status_code == 403 and response.json()["error"] == "two_factor_required", label
        else:
            assert response.status_code == 303 and response.headers["location"] == "/account/two-factor", label
    prompt = client.get("/account/two-factor")
    assert prompt.status_code == 200 and "Skip for now" not in prompt.text and "must set it up" in prompt.text
    assert (
        client.post("/account/two-factor/skip", data={"next": "/"}, follow_redirects=False).headers["location"]
        == "/account/two-factor"
    )
    enrol_through_api(client, clock)
    assert client.get("/api/v1/me").status_code == 200
    assert client.get("/admin/members").status_code == 200


def test_sign_in_page_after_the_grace_period_goes_to_enrolment_without_skip(
    client, make_user, services, practice, clock
):
    require(services, practice, grace_days=2)
    staff = make_user(role="staff")
    clock.advance(days=2)
    signed = client.post(
        "/sign-in", data={"email": staff.email, "password": PASSWORD, "next": ""}, follow_redirects=True
    )
    assert signed.url.path == "/account/two-factor" and "Skip for now" not in signed.text
    setup = client.post("/account/security/totp")
    assert setup.status_code == 200 and "Set up your authenticator app" in setup.text


COVERAGE = [
    ([], "staff", True),
    ([], "provider", True),
    (["provider"], "provider", True),
    (["provider"], "staff", False),
    (["staff"], "admin", True),  # admins always
    (["provider", "staff"], "admin", True),
    (["admin"], "provider", False),
]


def test_who_the_requirement_covers(client, make_user, services, practice, clock):
    make_user(role="admin", with_totp=True)
    members = {role: make_user(role=role) for role in ("admin", "provider", "staff")}
    for required_roles, role, blocked in COVERAGE:
        require(services, practice, grace_days=0, required_roles=required_roles)
        clock.advance(seconds=1)
        sign_in(client, members[role])
        response = client.get("/api/v1/me")
        assert (response.status_code == 403) is blocked, (required_roles, role)
        if blocked:
            assert response.json()["error"] == "two_factor_required"


def test_a_member_who_joins_later_gets_the_full_grace_period(client, make_user, services, practice, clock):
    require(services, practice, grace_days=3)
    clock.advance(days=10)
    newcomer = make_user(role="staff")
    sign_in(client, newcomer)
    assert client.get("/api/v1/me").status_code == 200
    clock.advance(days=3)
    sign_in(client, newcomer)
    assert client.get("/api/v1/me").status_code == 403


def test_policy_changes_apply_at_the_next_request(client, make_user, services, practice, clock):
    staff = make_user(role="staff")
    sign_in(client, staff)
    assert client.get("/api/v1/me").status_code == 200
    require(services, practice, grace_days=0)
    clock.advance(seconds=1)
    assert client.get("/api/v1/me").status_code == 403
    services.policies.update(
        practice_id=practice.id, actor_id=None, changes={"require_two_factor": False}, context=RequestContext()
    )
    assert client.get("/api/v1/me").status_code == 200


def test_a_reset_demand_allows_no_grace_and_ends_with_enrolment(client, make_user, services, practice, clock):
    staff = make_user(role="staff", with_totp=True)
    services.resets.break_glass_reset(email=staff.email, reason="lost phone", context=RequestContext.system())
    sign_in(client, staff)
    assert client.get("/api/v1/me").status_code == 403
    assert "Skip for now" not in client.get("/account/two-factor").text
    key = enrol_through_api(client, clock)
    assert client.get("/api/v1/me").status_code == 200
    # The demand is met and gone: turning 2FA off later is the member's own choice again.
    clock.advance(seconds=30)
    off = client.request(
        "DELETE", "/api/v1/me/totp", json={"password": PASSWORD, "code": otp.totp(key, clock.now().timestamp())}
    )
    assert off.status_code == 200
    assert client.get("/api/v1/me").status_code == 200


def test_every_signed_in_route_is_found_by_the_probe(app, anonymous):
    routes = {(method, path) for method, path, _url in signed_in_routes(app, anonymous)}
    assert ENROLMENT - {("GET", "/account/two-factor"), ("POST", "/account/two-factor/skip")} <= routes
    assert {
        ("GET", "/api/v1/me"),
        ("DELETE", "/api/v1/me/totp"),
        ("GET", "/account/security"),
        ("PUT", "/api/v1/practice/policy"),
    } <= routes


README = Path(__file__).resolve().parents[3] / "README.md"


def readme_open_routes() -> set[tuple[str, str]]:
    """The API routes the README says a member held at enrolment can still use."""
    text = README.read_text(encoding="utf-8")
    start = text.index("A member who must set up 2FA and may no longer skip")
    paragraph = text[start : text.index("\n\n", start)]
    return set(re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/api/[^`\s]+)`", paragraph))


def test_the_readme_names_exactly_the_api_routes_a_held_member_can_use(
    client, anonymous, app, make_user, services, practice, clock
):
    documented = readme_open_routes()
    api_routes = {
        (method, route.path) for route in all_routes(app.routes) for method in getattr(route, "methods", None) or ()
    }
    assert documented and documented <= api_routes, documented - api_routes  # no route named that does not exist
    gated = {(method, path): url for method, path, url in signed_in_routes(app, anonymous) if path.startswith("/api/")}
    require(services, practice, allowed_methods=["totp", "email", "recovery_code"], grace_days=0)
    member = make_user(role="provider")
    clock.advance(seconds=1)
    assert sign_in(client, member).json() == {"status": "signed_in"}
    still_open = set()
    for (method, path), url in gated.items():
        response = client.request(method, url, json={}, follow_redirects=False)
        if not (response.status_code == 403 and response.json().get("error") == "two_factor_required"):
            still_open.add((method, path))
    assert still_open == documented & set(gated)
