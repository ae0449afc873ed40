"""The apps contract of /api/v1/practice/apps and Administration › Apps, on every storage backend."""

from __future__ import annotations

import pytest

from tests.conftest import backends, sign_in
from tests.support.practice_admin import events
from twofold.store.models import MAX_ID

APP_KEYS = {
    "id",
    "name",
    "url",
    "allowed_roles",
    "bypass_paths",
    "reauth_minutes",
    "enabled",
    "client_id",
    "public",
    "redirect_uris",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "client_secret",
}
FILES = {"name": "File share", "url": "https://files.riverside.example/"}


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def test_an_app_is_added_listed_changed_and_removed_with_every_change_audited(client, admin, services, practice):
    created = client.post("/api/v1/practice/apps", json={**FILES, "bypass_paths": ["/health", "/static/"]})
    assert created.status_code == 201, created.text
    app = created.json()
    assert set(app) == APP_KEYS
    assert app["url"] == "https://files.riverside.example" and app["enabled"] is True
    assert app["allowed_roles"] == ["admin", "provider", "staff"]  # default: every role
    assert app["bypass_paths"] == ["/health", "/static/"] and app["reauth_minutes"] is None

    listed = client.get("/api/v1/practice/apps").json()
    assert listed == {"items": [app], "total": 1}
    assert client.get(f"/api/v1/practice/apps/{app['id']}").json() == app

    changed = client.patch(
        f"/api/v1/practice/apps/{app['id']}", json={"allowed_roles": ["provider"], "reauth_minutes": 30}
    ).json()
    assert (
        changed["allowed_roles"] == ["provider"] and changed["reauth_minutes"] == 30 and changed["name"] == "File share"
    )
    disabled = client.patch(f"/api/v1/practice/apps/{app['id']}", json={"enabled": False, "reauth_minutes": None})
    assert disabled.json()["enabled"] is False and disabled.json()["reauth_minutes"] is None

    assert client.delete(f"/api/v1/practice/apps/{app['id']}").status_code == 204
    assert client.get(f"/api/v1/practice/apps/{app['id']}").status_code == 404
    assert client.get("/api/v1/practice/apps").json() == {"items": [], "total": 0}

    [added] = events(services, "practice:app:added")
    changes = events(services, "practice:app:changed")
    [removed] = events(services, "practice:app:removed")
    assert added.actor_id == admin.id and added.practice_id == practice.id and added.details["app_id"] == app["id"]
    assert [e.details["changed"] for e in changes] == [
        ["allowed_roles", "reauth_minutes"],
        ["enabled", "reauth_minutes"],
    ]
    assert changes[1].details["enabled"] is False
    assert removed.details["name"] == "File share"


def test_a_change_that_changes_nothing_writes_no_audit_event(client, admin, services):
    app = client.post("/api/v1/practice/apps", json=FILES).json()
    assert client.patch(f"/api/v1/practice/apps/{app['id']}", json={"name": "File share"}).status_code == 200
    assert events(services, "practice:app:changed") == []


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"name": "x", "url": "ftp://files.riverside.example"}, 422, "invalid_url"),
        ({"name": "x", "url": "files.riverside.example"}, 422, "invalid_url"),
        ({"name": "x", "url": "https://user:pw@files.riverside.example"}, 422, "invalid_url"),
        ({"name": "x", "url": "https://files.riverside.example/?a=1"}, 422, "invalid_url"),
        ({"name": "x", "url": "https://files.riverside.example/\r\nX: y"}, 422, "invalid_url"),
        ({"name": "x", "url": "https://files.riverside.example:99999"}, 422, "invalid_url"),
        ({"name": "x", "url": "https://" + "a" * 2100 + ".example"}, 422, "validation_error"),
        ({"name": "x"}, 422, "url_required"),
        ({"name": "  ", "url": "https://a.example"}, 422, "invalid_name"),
        ({"name": "x\ny", "url": "https://a.example"}, 422, "invalid_name"),
        ({"name": "x", "url": "https://a.example", "allowed_roles": []}, 422, "unknown_role"),
        ({"name": "x", "url": "https://a.example", "allowed_roles": ["root"]}, 422, "unknown_role"),
        ({"name": "x", "url": "https://a.example", "bypass_paths": ["health"]}, 422, "invalid_bypass_path"),
        ({"name": "x", "url": "https://a.example", "bypass_paths": ["/a/../admin"]}, 422, "invalid_bypass_path"),
        ({"name": "x", "url": "https://a.example", "bypass_paths": ["/a\r\n"]}, 422, "invalid_bypass_path"),
        ({"name": "x", "url": "https://a.example", "reauth_minutes": 0}, 422, "invalid_reauth_minutes"),
        ({"name": "x", "url": "https://a.example", "reauth_minutes": 10**12}, 422, "invalid_reauth_minutes"),
        ({"name": "x", "url": "https://a.example", "reauth_minutes": True}, 422, "validation_error"),
        ({"name": "x", "url": "https://a.example", "colour": "red"}, 422, "validation_error"),
    ],
)
def test_bad_app_fields_are_refused_and_change_nothing(client, admin, services, body, status, error):
    response = client.post("/api/v1/practice/apps", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert client.get("/api/v1/practice/apps").json()["total"] == 0
    assert events(services, "practice:app:added") == []


def test_an_address_belongs_to_one_app_whatever_the_practice(client, admin, make_practice, services):
    assert client.post("/api/v1/practice/apps", json=FILES).status_code == 201
    again = client.post("/api/v1/practice/apps", json={"name": "Again", "url": "HTTPS://Files.Riverside.Example:443"})
    assert again.status_code == 409 and again.json()["error"] == "duplicate_app_url"
    other = client.post("/api/v1/practice/apps", json={"name": "Wiki", "url": "https://wiki.riverside.example"}).json()
    moved = client.patch(f"/api/v1/practice/apps/{other['id']}", json={"url": "https://files.riverside.example"})
    assert moved.status_code == 409 and moved.json()["error"] == "duplicate_app_url"
    assert (
        client.post(
            "/api/v1/practice/apps", json={"name": "Port", "url": "https://files.riverside.example:8443"}
        ).status_code
        == 201
    )


def test_ids_out_of_range_are_a_clear_4xx(client, admin):
    for path in ("/api/v1/practice/apps/0", f"/api/v1/practice/apps/{MAX_ID + 1}", "/api/v1/practice/apps/abc"):
        assert client.get(path).status_code == 422
    assert client.get(f"/api/v1/practice/apps/{MAX_ID}").json()["error"] == "app_not_found"


def test_the_apps_page_adds_edits_disables_and_removes(client, admin, services):
    page = client.get("/admin/apps")
    assert page.status_code == 200 and "Add an app" in page.text and 'href="/admin/apps"' in page.text
    added = client.post(
        "/admin/apps",
        data={"name": "Wiki", "url": "https://wiki.riverside.example", "bypass_paths": "/health\n/static/\n"},
        follow_redirects=False,
    )
    assert added.status_code == 303 and added.headers["location"] == "/admin/apps?notice=app_added"
    [app] = services.apps.list_apps(practice_id=admin.practice_id)
    assert app.bypass_paths == ["/health", "/static/"] and app.allowed_roles == ["admin", "provider", "staff"]
    assert "Wiki" in client.get("/admin/apps?notice=app_added").text

    refused = client.post("/admin/apps", data={"name": "Bad", "url": "javascript:alert(1)"})
    assert refused.status_code == 422 and "full http or https address" in refused.text

    edit = client.get(f"/admin/apps/{app.id}")
    assert edit.status_code == 200 and "https://wiki.riverside.example" in edit.text
    saved = client.post(
        f"/admin/apps/{app.id}",
        data={"name": "Wiki", "url": app.url, "allowed_roles": ["admin"], "reauth_minutes": "15"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    view = services.apps.get_app(practice_id=admin.practice_id, app_id=app.id)
    assert view.enabled is False and view.allowed_roles == ["admin"] and view.reauth_minutes == 15
    assert view.bypass_paths == []
    no_roles = client.post(f"/admin/apps/{app.id}", data={"name": "Wiki", "url": app.url, "enabled": "true"})
    assert no_roles.status_code == 422 and "at least one role" in no_roles.text

    removed = client.post(f"/admin/apps/{app.id}/remove", follow_redirects=False)
    assert removed.status_code == 303 and services.apps.list_apps(practice_id=admin.practice_id) == []


def test_members_who_are_not_admins_cannot_see_apps(client, make_user, clock):
    staff = make_user(role="staff", with_totp=True)
    assert sign_in(client, staff, clock).status_code == 200
    assert client.get("/api/v1/practice/apps").status_code == 403
    assert client.post("/api/v1/practice/apps", json=FILES).status_code == 403


def test_an_app_with_redirect_uris_is_an_openid_connect_client_whose_secret_is_shown_once(client, admin, services):
    body = {
        "name": "Patient Records",
        "redirect_uris": ["https://records.riverside.example/oidc/callback"],
        "post_logout_redirect_uris": ["https://records.riverside.example/"],
        "allowed_roles": ["provider"],
    }
    created = client.post("/api/v1/practice/apps", json=body)
    assert created.status_code == 201, created.text
    app = created.json()
    assert app["url"] is None and app["public"] is False and app["client_id"] and len(app["client_secret"]) >= 40
    assert app["redirect_uris"] == body["redirect_uris"]
    shown = client.get(f"/api/v1/practice/apps/{app['id']}").json()
    assert shown["client_id"] == app["client_id"] and shown["client_secret"] is None
    rotated = client.post(f"/api/v1/practice/apps/{app['id']}/rotate-secret").json()
    assert rotated["client_secret"] not in (None, app["client_secret"])
    assert [e.details["app_id"] for e in events(services, "practice:app:oidc_client_secret_rotated")] == [app["id"]]
    public = client.post(
        "/api/v1/practice/apps", json={"name": "Phone app", "redirect_uris": ["https://m.example/cb"], "public": True}
    ).json()
    assert public["public"] is True and public["client_secret"] is None
    assert client.post(f"/api/v1/practice/apps/{public['id']}/rotate-secret").status_code == 422


@pytest.mark.parametrize(
    "uri",
    ["https://records.example/*", "http://records.example/cb", "https://records.example/cb#x", "records.example/cb"],
    ids=["wildcard", "plain-http", "fragment", "relative"],
)
def test_redirect_uris_must_be_exact_https_urls_and_nothing_is_added_otherwise(client, admin, uri):
    refused = client.post("/api/v1/practice/apps", json={"name": "Records", "redirect_uris": [uri]})
    assert refused.status_code == 422 and refused.json()["error"] == "invalid_input"
    assert client.get("/api/v1/practice/apps").json()["total"] == 0


def test_the_apps_page_registers_an_openid_connect_client_and_shows_its_secret_once(client, admin, services):
    added = client.post(
        "/admin/apps",
        data={
            "name": "Patient Records",
            "allowed_roles": ["provider", "staff"],
            "redirect_uris": "https://records.riverside.example/cb\n",
            "post_logout_redirect_uris": "https://records.riverside.example/\n",
        },
        follow_redirects=False,
    )
    assert added.status_code == 200, added.text  # the secret is on this answer, never in a redirect's URL
    [app] = services.apps.list_apps(practice_id=admin.practice_id)
    client_id = services.oidc_clients.of_apps(practice_id=admin.practice_id)[app.id].client_id
    secret = added.text.split('id="client-secret">')[1].split("<")[0]
    assert client_id in added.text and len(secret) >= 40
    again = client.get(f"/admin/apps/{app.id}")
    assert client_id in again.text and secret not in again.text and 'id="client-secret"' not in again.text
    rotated = client.post(f"/admin/apps/{app.id}/rotate-secret")
    new_secret = rotated.text.split('id="client-secret">')[1].split("<")[0]
    assert rotated.status_code == 200 and new_secret != secret
    refused = client.post("/admin/apps", data={"name": "Bad", "redirect_uris": "https://x.example/*"})
    assert refused.status_code == 422 and "wildcards" in refused.text
    assert len(services.apps.list_apps(practice_id=admin.practice_id)) == 1


RECORDS = {"name": "Patient Records", "redirect_uris": ["https://records.riverside.example/cb"]}


def test_an_openid_connect_apps_redirect_uris_are_changed_with_patch_and_audited(client, admin, services):
    app = client.post("/api/v1/practice/apps", json=RECORDS).json()
    moved = ["https://records.riverside.example/oidc/callback", "https://records-2.riverside.example/cb"]
    changed = client.patch(
        f"/api/v1/practice/apps/{app['id']}",
        json={"redirect_uris": moved, "post_logout_redirect_uris": ["https://records.riverside.example/"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["redirect_uris"] == moved and changed.json()["client_id"] == app["client_id"]
    [event] = events(services, "practice:app:oidc_client_changed")
    assert event.details["changes"]["redirect_uris"] == [RECORDS["redirect_uris"], moved]
    assert event.details["changes"]["post_logout_redirect_uris"] == [[], ["https://records.riverside.example/"]]
    registered = services.oidc_clients.of_apps(practice_id=admin.practice_id)[app["id"]]
    assert not registered.check_redirect_uri(RECORDS["redirect_uris"][0]) and registered.check_redirect_uri(moved[1])
    # The same lists again: nothing changes, nothing is audited.
    assert client.patch(f"/api/v1/practice/apps/{app['id']}", json={"redirect_uris": moved}).status_code == 200
    assert len(events(services, "practice:app:oidc_client_changed")) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Renamed", "redirect_uris": []},
        {"name": "Renamed", "redirect_uris": ["https://records.example/*"]},
        {"name": "Renamed", "post_logout_redirect_uris": ["http://records.example/"]},
        {"url": "ftp://nope", "redirect_uris": ["https://records.riverside.example/new"]},
    ],
    ids=["empty", "wildcard", "plain-http-logout", "bad-url-with-good-uris"],
)
def test_a_refused_change_of_redirect_uris_changes_nothing(client, admin, services, body):
    app = client.post("/api/v1/practice/apps", json=RECORDS).json()
    before = client.get(f"/api/v1/practice/apps/{app['id']}").json()
    refused = client.patch(f"/api/v1/practice/apps/{app['id']}", json=body)
    assert refused.status_code == 422, refused.text
    assert client.get(f"/api/v1/practice/apps/{app['id']}").json() == before
    assert not events(services, "practice:app:oidc_client_changed") and not events(services, "practice:app:changed")


def test_an_app_that_is_no_openid_connect_client_has_no_redirect_uris_to_change(client, admin, services):
    app = client.post("/api/v1/practice/apps", json=FILES).json()
    refused = client.patch(
        f"/api/v1/practice/apps/{app['id']}", json={"name": "Renamed", "redirect_uris": ["https://files.example/cb"]}
    )
    assert refused.status_code == 404 and "not an OpenID Connect client" in refused.json()["message"]
    assert client.get(f"/api/v1/practice/apps/{app['id']}").json()["name"] == FILES["name"]


def test_the_app_page_changes_an_openid_connect_apps_redirect_uris(client, admin, services):
    app = client.post("/api/v1/practice/apps", json={**RECORDS, "allowed_roles": ["provider"]}).json()
    page = client.get(f"/admin/apps/{app['id']}")
    assert 'id="redirect_uris"' in page.text and RECORDS["redirect_uris"][0] in page.text
    form = {"name": "Patient Records", "allowed_roles": ["provider"], "redirect_uris": "https://records.example/*"}
    refused = client.post(f"/admin/apps/{app['id']}", data=form)
    assert refused.status_code == 422 and "wildcards" in refused.text
    form["redirect_uris"] = "https://records.riverside.example/new-callback\n"
    saved = client.post(f"/admin/apps/{app['id']}", data=form, follow_redirects=False)
    assert saved.status_code == 303
    registered = services.oidc_clients.of_apps(practice_id=admin.practice_id)[app["id"]]
    assert registered.redirect_uris == ("https://records.riverside.example/new-callback",)
    assert (
        'id="redirect_uris"'
        not in client.get(f"/admin/apps/{client.post('/api/v1/practice/apps', json=FILES).json()['id']}").text
    )
