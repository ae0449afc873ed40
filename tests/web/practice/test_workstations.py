"""Administration › Workstations and /api/v1/practice/workstations; the sign-in pages on a shared workstation."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.conftest import PASSWORD, backends, sign_in
from tests.support.practice_admin import events
from twofold.store.models import MAX_ID

COOKIE = "twofold_workstation"  # the test client is plain-HTTP localhost: no "__Host-" prefix


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def mark(client, name="Front desk 1"):
    response = client.post("/api/v1/practice/workstations", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()


def form_sign_in(client, member):
    return client.post("/sign-in", data={"email": member.email, "password": PASSWORD}, follow_redirects=False)


def test_a_workstation_is_marked_listed_renamed_and_unmarked_through_the_api(client, admin, services):
    created = mark(client)
    assert set(created) == {"id", "name", "created_at", "last_used_at", "current"}
    assert created["name"] == "Front desk 1" and created["current"] is True
    assert client.cookies.get(COOKIE)
    listed = client.get("/api/v1/practice/workstations").json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == created["id"]
    again = client.post("/api/v1/practice/workstations", json={"name": "Desk 2"})
    assert again.status_code == 409 and again.json()["error"] == "already_a_workstation"
    renamed = client.patch(f"/api/v1/practice/workstations/{created['id']}", json={"name": "Reception"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Reception"
    gone = client.delete(f"/api/v1/practice/workstations/{created['id']}")
    assert gone.status_code == 204
    assert COOKIE in gone.headers["set-cookie"] and "Max-Age=0" in gone.headers["set-cookie"]
    assert client.get("/api/v1/practice/workstations").json()["total"] == 0
    assert [e.event for e in events(services) if e.event.startswith("practice:workstation")] == [
        "practice:workstation:marked",
        "practice:workstation:renamed",
        "practice:workstation:unmarked",
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("post", "", {"name": ""}, 422),
        ("post", "", {"name": "Desk\x07"}, 422),
        ("post", "", {"name": "x" * 81}, 422),
        ("post", "", {"name": "Desk", "extra": 1}, 422),
        ("post", "", {}, 422),
        ("patch", "/{id}", {"name": "   "}, 422),
        ("patch", "/99999", {"name": "Desk"}, 404),
        ("delete", "/99999", None, 404),
        ("delete", f"/{MAX_ID + 1}", None, 422),
        ("delete", "/0", None, 422),
    ],
)
def test_bad_requests_are_refused_and_change_nothing(client, admin, services, method, path, body, status):
    created = mark(client, "Desk A")
    kwargs = {"json": body} if body is not None else {}
    response = client.request(method.upper(), "/api/v1/practice/workstations" + path.format(id=created["id"]), **kwargs)
    assert response.status_code == status, response.text
    assert client.get("/api/v1/practice/workstations").json()["items"] == [created | {"current": True}]
    assert len([e for e in events(services) if e.event.startswith("practice:workstation")]) == 1


def test_only_admins_manage_workstations(client, make_user, clock):
    staff = make_user(role="staff", with_totp=True)
    sign_in(client, staff, clock)
    assert client.get("/api/v1/practice/workstations").status_code == 403
    assert client.post("/api/v1/practice/workstations", json={"name": "Desk"}).status_code == 403
    assert client.get("/admin/workstations").status_code == 403
    assert not client.cookies.get(COOKIE)


def test_the_page_marks_this_browser_and_shows_a_bad_name_next_to_its_field(client, admin, services):
    page = client.get("/admin/workstations")
    assert page.status_code == 200 and "Mark this browser as a shared workstation" in page.text
    assert 'aria-current="page">Workstations' in page.text
    refused = client.post("/admin/workstations", data={"name": "  "})
    assert refused.status_code == 422
    assert re.search(r'id="mark-name"[^>]*aria-invalid="true"[^>]*aria-describedby="mark-error', refused.text)
    assert not client.cookies.get(COOKIE) and not events(services, "practice:workstation:marked")
    marked = client.post("/admin/workstations", data={"name": "Front desk 1"}, follow_redirects=False)
    assert marked.status_code == 303 and client.cookies.get(COOKIE)
    page = client.get(marked.headers["location"])
    assert "This browser is the shared workstation <strong>Front desk 1</strong>" in page.text
    assert "Mark this browser as a shared workstation</button>" not in page.text
    (view,) = client.get("/api/v1/practice/workstations").json()["items"]
    bad_rename = client.post(f"/admin/workstations/{view['id']}/rename", data={"name": ""})
    assert bad_rename.status_code == 422
    assert re.search(rf'id="rename-{view["id"]}-name"[^>]*aria-invalid="true"', bad_rename.text)
    client.post(f"/admin/workstations/{view['id']}/rename", data={"name": "Reception"})
    unmarked = client.post(f"/admin/workstations/{view['id']}/unmark", follow_redirects=False)
    assert unmarked.status_code == 303 and not client.cookies.get(COOKIE)
    assert client.post(f"/admin/workstations/{view['id']}/unmark").status_code == 404


def test_on_a_workstation_the_sign_in_is_who_is_next_and_never_remembers(client, admin, make_user, clock, services):
    mark(client)
    staff = make_user(role="staff", with_totp=True, email="sam@riverside.example")
    client.post("/sign-out")
    page = client.get("/sign-in?notice=signed_out")
    assert "Shared workstation: Front desk 1" in page.text
    assert re.search(
        r'<input id="email" name="email" type="email" autocomplete="off" required value="" autofocus', page.text
    )
    assert "admin@riverside.example" not in page.text
    code_page = form_sign_in(client, staff).headers["location"]
    page = client.get(code_page)
    assert page.status_code == 200 and "remember_browser" not in page.text
    # Sent anyway: refused, nothing used up.
    code = staff.code(clock)
    refused = client.post(code_page, data={"code": code, "remember_browser": "1"}, follow_redirects=False)
    assert refused.status_code == 422 and "shared workstation" in refused.text
    done = client.post(code_page, data={"code": code}, follow_redirects=False)
    assert done.status_code == 303
    assert not any(name.startswith("twofold_rb_") for name in client.cookies)
    me = client.get("/api/v1/me/session").json()
    assert me["idle_timeout_seconds"] == 120
    assert "after 2 minutes" in client.get("/account/security").text
    signed_out = client.post("/sign-out", follow_redirects=True)
    assert "Shared workstation: Front desk 1" in signed_out.text and "sam@riverside.example" not in signed_out.text


def test_the_json_sign_in_refuses_remember_on_a_workstation(client, admin, make_user, clock):
    mark(client)
    client.post("/api/v1/sign-out")
    staff = make_user(role="staff", with_totp=True)
    flow = client.post("/api/v1/sign-in", json={"email": staff.email, "password": PASSWORD}).json()
    body = {"method": "totp", "code": staff.code(clock), "remember_browser": True}
    refused = client.post(f"/api/v1/sign-in/{flow['flow_id']}/second-factor", json=body)
    assert refused.status_code == 422 and refused.json()["error"] == "remember_refused_on_workstation"
    body["remember_browser"] = False
    assert client.post(f"/api/v1/sign-in/{flow['flow_id']}/second-factor", json=body).status_code == 200


def test_another_practices_member_cannot_sign_in_there(client, admin, make_user, make_practice):
    mark(client)
    client.post("/sign-out")
    other = make_practice("Lakeside Clinic")
    stranger = make_user(role="staff", practice_id=other.id, email="lee@lakeside.example")
    refused = form_sign_in(client, stranger)
    assert refused.status_code == 401 and "The email or password is not right." in refused.text


@pytest.mark.parametrize(
    ("idle", "shared", "field_error"),
    [
        ("15", "16", "It cannot be longer than the idle time everywhere else."),
        ("15", "0", "from 1 to 15"),
        ("15", "two", "enter a whole number of minutes."),
    ],
)
def test_the_policy_page_shows_a_bad_shared_timeout_next_to_its_field(
    client, admin, services, idle, shared, field_error
):
    form = {
        "grace_days": "7",
        "remember_browser_days": "30",
        "idle_timeout_minutes": idle,
        "shared_workstation_idle_minutes": shared,
        "allowed_methods": ["recovery_code"],
    }
    page = client.post("/admin/policy", data=form)
    assert page.status_code == 422
    assert field_error in page.text
    assert re.search(r'id="shared_workstation_idle_minutes"[^>]*aria-invalid="true"', page.text)
    assert not events(services, "practice:policy:changed")
    saved = client.post("/admin/policy", data={**form, "shared_workstation_idle_minutes": "5"}, follow_redirects=False)
    assert saved.status_code == 303
    assert client.get("/api/v1/practice/policy").json()["shared_workstation_idle_minutes"] == 5


def test_over_https_the_mark_is_a_host_only_prefixed_cookie_and_an_unprefixed_one_counts_for_nothing(
    app, make_user, clock
):
    admin = make_user(role="admin", with_totp=True)
    with TestClient(app, base_url="https://signin.riverside.example") as browser:
        sign_in(browser, admin, clock)
        answer = browser.post("/api/v1/practice/workstations", json={"name": "Front desk 1"})
        [cookie] = [c for c in answer.headers.get_list("set-cookie") if "twofold_workstation=" in c]
        assert cookie.startswith("__Host-twofold_workstation=") and "Secure" in cookie and "Domain" not in cookie
        assert "HttpOnly" in cookie and "Max-Age=34560000" in cookie
        token = browser.cookies["__Host-twofold_workstation"]
        assert browser.post("/api/v1/sign-out").status_code == 200
        assert "Shared workstation: Front desk 1" in browser.get("/sign-in").text
    with TestClient(app, base_url="https://signin.riverside.example") as planted:
        planted.cookies.set("twofold_workstation", token)  # without the prefix: another host may have set it
        assert "Shared workstation" not in planted.get("/sign-in").text
