"""The OpenID Connect endpoints against the contract, through HTTP: discovery, the code flow with
PKCE, codes (single use, 60 s, bound), refresh rotation and reuse, revocation, introspection,
userinfo, logout, and every refusal. The flows with a real relying party library are in
test_oidc_relying_party.py; the browser walk in tests/browser/test_oidc_browser.py.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select, text

from tests.support.oidc import authorize, exchange, pkce, register_app, walk
from twofold.clock import FrozenClock
from twofold.context import RequestContext
from twofold.store.models import OidcSigningKey, User

BASE = "http://127.0.0.1"


def issuer_of(client) -> str:
    """The issuer: the public origin (in development, the address `twofold serve` listens on), not the request's host."""
    return client.app.state.services.settings.resolved_public_origin()


@pytest.fixture
def clock() -> FrozenClock:
    # ID tokens carry real times here: the checks below read them as a relying party would.
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def member(make_user):
    return make_user(with_totp=True, role="provider")


@pytest.fixture
def app_(services, practice):
    return register_app(services, practice.id)


def signed_in_tokens(client, services, app_, member, clock, **params):
    verifier, challenge = pkce()
    answer = authorize(
        client, BASE, app_, member, clock, code_challenge=challenge, code_challenge_method="S256", **params
    )
    response = exchange(client, BASE, app_, answer["code"], verifier)
    assert response.status_code == 200, response.text
    return response.json()


def id_claims(client, token: str) -> tuple[dict, dict]:
    keys = KeySet.import_key_set(client.get("/jwks").json())
    decoded = jwt.decode(token, keys, algorithms=["RS256"])
    return decoded.header, dict(decoded.claims)


# -- discovery and keys -------------------------------------------------------------------------------


def test_discovery_lists_every_endpoint_and_only_what_is_supported(client):
    doc = client.get("/.well-known/openid-configuration").json()
    assert doc["issuer"] == issuer_of(client)
    for name, path in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
        ("introspection_endpoint", "/introspect"),
        ("revocation_endpoint", "/revoke"),
        ("end_session_endpoint", "/end-session"),
    ]:
        assert doc[name] == issuer_of(client) + path
    assert doc["response_types_supported"] == ["code"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post", "none"}
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert set(doc["scopes_supported"]) == {"openid", "profile", "email", "offline_access", "groups"}
    assert {"sub", "auth_time", "amr", "acr", "sid", "groups", "practice", "email_verified"} <= set(
        doc["claims_supported"]
    )


def test_public_origin_is_the_issuer(settings, services, client):
    settings.public_origin = "https://sso.riverside.example"
    assert client.get("/.well-known/openid-configuration").json()["issuer"] == "https://sso.riverside.example"


def test_signing_key_is_made_once_and_its_private_half_is_sealed(services, client):
    first = client.get("/jwks").json()["keys"]
    again = client.get("/jwks").json()["keys"]
    assert len(first) == 1 and first == again
    assert first[0]["kty"] == "RSA" and first[0]["alg"] == "RS256" and "d" not in first[0]
    with services.db.reading() as s:
        row = s.scalars(select(OidcSigningKey)).one()
    assert row.private_jwk_sealed.startswith("v1.") and '"d"' not in row.private_jwk_sealed
    assert "d" not in row.public_jwk


# -- the code flow -------------------------------------------------------------------------------------


def test_member_signs_in_to_an_app_with_password_and_code_and_gets_the_contracted_claims(
    client, services, app_, member, clock, practice
):
    verifier, challenge = pkce()
    answer = authorize(
        client, BASE, app_, member, clock, code_challenge=challenge, code_challenge_method="S256", nonce="n-0S6"
    )
    assert answer["iss"] == issuer_of(client) and answer["state"]  # RFC 9207
    response = exchange(client, BASE, app_, answer["code"], verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"] and tokens["expires_in"] == 600
    header, claims = id_claims(client, tokens["id_token"])
    assert header["alg"] == "RS256" and header["kid"] in {k["kid"] for k in client.get("/jwks").json()["keys"]}
    assert claims["iss"] == issuer_of(client) and claims["aud"] == [app_.client_id] and claims["nonce"] == "n-0S6"
    assert claims["sub"] not in (member.email, str(member.id)) and len(claims["sub"]) >= 32
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "urn:twofold:acr:2fa"
    assert claims["email"] == member.email and claims["email_verified"] is True
    assert claims["groups"] == ["provider"] and claims["practice"] == practice.name
    assert claims["auth_time"] == int(clock.now().timestamp()) and claims["sid"] and claims["at_hash"]
    assert claims["exp"] - claims["iat"] == 600
    info = client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
    assert info["sub"] == claims["sub"] and info["email"] == member.email and info["groups"] == ["provider"]


def test_sub_is_stable_across_sign_ins(client, services, app_, member, clock):
    first = signed_in_tokens(client, services, app_, member, clock)
    second = signed_in_tokens(client, services, app_, member, clock)
    assert id_claims(client, first["id_token"])[1]["sub"] == id_claims(client, second["id_token"])[1]["sub"]


def test_tokens_and_codes_are_stored_only_as_keyed_hashes(client, services, app_, member, clock):
    tokens = signed_in_tokens(client, services, app_, member, clock)
    with services.db.reading() as s:
        dump = json.dumps(
            [
                list(map(str, row))
                for table in ("oidc_tokens", "oidc_authorization_codes", "oidc_clients")
                for row in s.execute(text(f"SELECT * FROM {table}")).all()  # noqa: S608 - fixed table names
            ]
        )
    for value in (tokens["access_token"], tokens["refresh_token"], app_.client_secret):
        assert value not in dump


def test_refresh_tokens_only_with_offline_access(client, services, app_, member, clock):
    tokens = signed_in_tokens(client, services, app_, member, clock, scope="openid email")
    assert "refresh_token" not in tokens


def test_prompt_none_without_a_session_answers_login_required_at_the_app(client, app_):
    response = walk(
        client,
        f"/authorize?response_type=code&client_id={app_.client_id}&redirect_uri={app_.redirect_uri}"
        "&scope=openid&state=s1&prompt=none",
        stop_at=app_.redirect_uri,
    )
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query == {"error": ["login_required"], "state": ["s1"], "iss": [issuer_of(client)]}


def test_prompt_login_asks_for_password_and_code_again(client, services, app_, member, clock):
    first = signed_in_tokens(client, services, app_, member, clock)
    clock.advance(minutes=2)
    verifier, challenge = pkce()
    start = walk(
        client,
        f"/authorize?response_type=code&client_id={app_.client_id}&redirect_uri={app_.redirect_uri}"
        f"&scope=openid&state=s2&prompt=login&code_challenge={challenge}&code_challenge_method=S256",
        stop_at=app_.redirect_uri,
    )
    assert start.url.path == "/sign-in" and 'name="password"' in start.text  # the form, although signed in
    # Skipping the form (back to the held request) does not do: the old sign-in is too old.
    held = walk(client, next(h for h in [start.text.split('name="next" value="')[1].split('"')[0]]))
    assert held.url.path == "/sign-in"
    answer = authorize(
        client, BASE, app_, member, clock, prompt="login", code_challenge=challenge, code_challenge_method="S256"
    )
    tokens = exchange(client, BASE, app_, answer["code"], verifier).json()
    assert id_claims(client, tokens["id_token"])[1]["auth_time"] > id_claims(client, first["id_token"])[1]["auth_time"]


def test_max_age_past_asks_for_a_new_sign_in(client, services, app_, member, clock):
    signed_in_tokens(client, services, app_, member, clock)
    clock.advance(minutes=5)
    response = walk(
        client,
        f"/authorize?response_type=code&client_id={app_.client_id}&redirect_uri={app_.redirect_uri}"
        "&scope=openid&max_age=60&code_challenge=" + pkce()[1] + "&code_challenge_method=S256",
        stop_at=app_.redirect_uri,
    )
    assert response.url.path == "/sign-in" and 'name="password"' in response.text


# -- refusals that never redirect ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "response_type=code&client_id={cid}&redirect_uri=https://evil.example/callback&scope=openid",
        "response_type=code&client_id={cid}&redirect_uri=https://records.example/callback/extra&scope=openid",
        "response_type=code&client_id={cid}&scope=openid",
        "response_type=code&client_id=nobody&redirect_uri=https://records.example/callback&scope=openid",
        "response_type=code&redirect_uri=https://records.example/callback&scope=openid",
    ],
    ids=["other-host", "longer-path", "no-redirect-uri", "unknown-client", "no-client"],
)
def test_bad_client_or_redirect_uri_shows_an_error_page_and_never_redirects(client, app_, query):
    response = client.get("/authorize?" + query.format(cid=app_.client_id), follow_redirects=False)
    assert response.status_code == 400 and not response.is_redirect
    assert "cannot be used" in response.text


def test_a_disabled_client_cannot_start_a_sign_in(client, services, app_, practice):
    services.apps.update_app(
        practice_id=practice.id, actor_id=None, app_id=app_.app_id, changes={"enabled": False}, context=RequestContext()
    )
    response = client.get(
        f"/authorize?response_type=code&client_id={app_.client_id}&redirect_uri={app_.redirect_uri}&scope=openid",
        follow_redirects=False,
    )
    assert response.status_code == 400 and not response.is_redirect


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ("response_type=token", "unsupported_response_type"),
        ("response_type=code+id_token", "unsupported_response_type"),
        ("response_type=code&code_challenge={ch}&code_challenge_method=plain", "invalid_request"),
        ("response_type=code&code_challenge={ch}", "invalid_request"),
        ("response_type=code&scope=openid+admin", "invalid_scope"),
        ("response_type=code&max_age=soon", "invalid_request"),
    ],
    ids=["implicit", "hybrid", "plain-pkce", "pkce-without-method", "unknown-scope", "bad-max-age"],
)
def test_refused_requests_go_back_to_the_app_with_the_rfc_error(client, app_, member, clock, extra, error):
    from tests.support.base import sign_in

    sign_in(client, member, clock)
    query = extra.format(ch=pkce()[1])
    if "scope=" not in query:
        query += "&scope=openid"
    response = walk(
        client,
        f"/authorize?{query}&client_id={app_.client_id}&redirect_uri={app_.redirect_uri}&state=st",
        stop_at=app_.redirect_uri,
    )
    assert response.headers["location"].startswith(app_.redirect_uri), response.text[:300]
    assert f"error={error}" in response.headers["location"] and "state=st" in response.headers["location"]


def test_a_public_client_must_use_pkce(client, services, practice, member, clock):
    public = register_app(services, practice.id, public=True)
    from tests.support.base import sign_in

    sign_in(client, member, clock)
    response = walk(
        client,
        f"/authorize?response_type=code&client_id={public.client_id}&redirect_uri={public.redirect_uri}&scope=openid",
        stop_at=public.redirect_uri,
    )
    assert "error=invalid_request" in response.headers["location"]


def test_a_public_client_signs_in_with_pkce_and_no_secret(client, services, practice, member, clock):
    public = register_app(services, practice.id, public=True)
    assert public.client_secret is None
    verifier, challenge = pkce()
    answer = authorize(client, BASE, public, member, clock, code_challenge=challenge, code_challenge_method="S256")
    response = exchange(client, BASE, public, answer["code"], verifier)
    assert response.status_code == 200 and response.json()["id_token"]


# -- codes -------------------------------------------------------------------------------------------------


def test_a_code_works_once_and_its_second_use_revokes_what_the_first_issued(client, services, app_, member, clock):
    verifier, challenge = pkce()
    answer = authorize(client, BASE, app_, member, clock, code_challenge=challenge, code_challenge_method="S256")
    tokens = exchange(client, BASE, app_, answer["code"], verifier).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/userinfo", headers=bearer).status_code == 200
    again = exchange(client, BASE, app_, answer["code"], verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert client.get("/userinfo", headers=bearer).status_code == 401
    refreshed = client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(app_.client_id, app_.client_secret),
    )
    assert refreshed.json()["error"] == "invalid_grant"


def test_a_code_expires_after_60_seconds(client, app_, member, clock):
    verifier, challenge = pkce()
    answer = authorize(client, BASE, app_, member, clock, code_challenge=challenge, code_challenge_method="S256")
    clock.advance(seconds=61)
    response = exchange(client, BASE, app_, answer["code"], verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_a_code_is_bound_to_its_pkce_verifier_redirect_uri_and_client(client, services, practice, app_, member, clock):
    other = register_app(services, practice.id, redirect_uri="https://other.example/callback")
    for attempt in ("verifier", "redirect", "client", "no-verifier"):
        verifier, challenge = pkce()
        answer = authorize(client, BASE, app_, member, clock, code_challenge=challenge, code_challenge_method="S256")
        if attempt == "verifier":
            response = exchange(client, BASE, app_, answer["code"], pkce()[0])
        elif attempt == "redirect":
            response = client.post(
                "/token",
                data={
                    "grant_type": "authorization_code",
                    "code": answer["code"],
                    "code_verifier": verifier,
                    "redirect_uri": "https://records.example/other",
                },
                auth=(app_.client_id, app_.client_secret),
            )
        elif attempt == "client":
            response = exchange(client, BASE, other, answer["code"], verifier, redirect_uri=app_.redirect_uri)
        else:
            response = exchange(client, BASE, app_, answer["code"], None)
        assert response.status_code == 400, attempt
        assert response.json()["error"] in ("invalid_grant", "invalid_request"), attempt


def test_a_wrong_client_secret_is_invalid_client(client, app_, member, clock):
    verifier, challenge = pkce()
    answer = authorize(client, BASE, app_, member, clock, code_challenge=challenge, code_challenge_method="S256")
    response = client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": app_.redirect_uri,
            "code_verifier": verifier,
        },
        auth=(app_.client_id, "not-the-secret"),
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    # The code was not spent by the refused request: the app with its secret still gets its tokens.
    assert exchange(client, BASE, app_, answer["code"], verifier).status_code == 200


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "password", "username": "a", "password": "b"},
        {"grant_type": "client_credentials"},
        {"grant_type": "implicit"},
        {},
    ],
    ids=["password", "client-credentials", "implicit", "none"],
)
def test_only_the_code_and_refresh_grants_exist(client, app_, form):
    response = client.post("/token", data=form, auth=(app_.client_id, app_.client_secret))
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"


# -- refresh, revocation, introspection ------------------------------------------------------------------------


def refresh(client, app_, token):
    return client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": token},
        auth=(app_.client_id, app_.client_secret),
    )


def test_refresh_rotates_and_a_rotated_token_presented_again_revokes_the_family(client, services, app_, member, clock):
    tokens = signed_in_tokens(client, services, app_, member, clock)
    second = refresh(client, app_, tokens["refresh_token"])
    assert second.status_code == 200 and second.json()["refresh_token"] != tokens["refresh_token"]
    replay = refresh(client, app_, tokens["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # The thief's replay ended the app's current tokens too.
    assert refresh(client, app_, second.json()["refresh_token"]).json()["error"] == "invalid_grant"
    bearer = {"Authorization": f"Bearer {second.json()['access_token']}"}
    assert client.get("/userinfo", headers=bearer).status_code == 401


@pytest.mark.parametrize("ending", ["deactivated", "two_factor_reset", "signed_out_everywhere"])
def test_ending_a_members_access_revokes_their_refresh_tokens(
    client, services, app_, member, clock, practice, make_user, ending
):
    tokens = signed_in_tokens(client, services, app_, member, clock)
    if ending == "deactivated":
        admin = make_user(role="admin")
        services.members.update_member(
            practice_id=practice.id, member_id=member.id, active=False, actor_id=admin.id, context=RequestContext()
        )
    elif ending == "two_factor_reset":
        admin = make_user(role="admin", with_totp=True)
        with services.db.reading() as s:
            admin_user = s.get(User, admin.id)
        services.resets.reset_member_two_factor(
            practice_id=practice.id,
            admin=admin_user,
            member_id=member.id,
            password=admin.password,
            code=admin.code(clock),
            reason="Lost phone",
            context=RequestContext(),
        )
    else:
        response = client.delete("/api/v1/me/sessions", params={"include_current": "true"})
        assert response.status_code == 200, response.text
    answer = refresh(client, app_, tokens["refresh_token"])
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_a_revoked_access_token_is_refused_by_userinfo_and_inactive_at_introspection(
    client, services, app_, member, clock
):
    tokens = signed_in_tokens(client, services, app_, member, clock)
    auth = (app_.client_id, app_.client_secret)
    live = client.post("/introspect", data={"token": tokens["access_token"]}, auth=auth).json()
    assert live["active"] is True and live["client_id"] == app_.client_id and live["scope"].startswith("openid")
    assert client.post("/revoke", data={"token": tokens["access_token"]}, auth=auth).status_code == 200
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/userinfo", headers=bearer).status_code == 401
    assert client.post("/introspect", data={"token": tokens["access_token"]}, auth=auth).json() == {"active": False}


def test_revoking_a_refresh_token_ends_its_family(client, services, app_, member, clock):
    tokens = signed_in_tokens(client, services, app_, member, clock)
    auth = (app_.client_id, app_.client_secret)
    response = client.post(
        "/revoke", data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}, auth=auth
    )
    assert response.status_code == 200
    assert refresh(client, app_, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_introspection_needs_client_authentication_and_shows_only_the_clients_own_tokens(
    client, services, app_, member, clock, practice
):
    tokens = signed_in_tokens(client, services, app_, member, clock)
    assert client.post("/introspect", data={"token": tokens["access_token"]}).status_code == 401
    other = register_app(services, practice.id, redirect_uri="https://other.example/cb")
    seen = client.post(
        "/introspect", data={"token": tokens["access_token"]}, auth=(other.client_id, other.client_secret)
    )
    assert seen.json() == {"active": False}


def test_access_tokens_expire(client, services, app_, member, clock):
    tokens = signed_in_tokens(client, services, app_, member, clock)
    clock.advance(seconds=601)
    assert client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code == 401


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer nope", "Basic abc", "Bearer " + "x" * 5000])
def test_userinfo_refuses_anything_but_a_live_bearer_token(client, header):
    response = client.get("/userinfo", headers={"Authorization": header} if header else {})
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")


# -- who may use an app ----------------------------------------------------------------------------------------


def test_another_practices_member_gets_access_denied_and_twofold_says_why(
    client, services, app_, make_practice, make_user, clock
):
    elsewhere = make_practice("Hillside Clinic")
    stranger = make_user(with_totp=True, practice_id=elsewhere.id, email="dr@hillside.example")
    from tests.support.base import sign_in

    sign_in(client, stranger, clock)
    response = client.get(
        f"/authorize?response_type=code&client_id={app_.client_id}&redirect_uri={app_.redirect_uri}"
        f"&scope=openid&state=s9&code_challenge={pkce()[1]}&code_challenge_method=S256",
        follow_redirects=False,
    )
    assert response.status_code == 403 and "belongs to another practice" in response.text
    back = response.text.split('class="button" href="')[1].split('"')[0].replace("&amp;", "&")
    assert back.startswith(app_.redirect_uri) and "error=access_denied" in back and "state=s9" in back


def test_a_role_the_app_does_not_allow_gets_access_denied(client, services, practice, make_user, clock):
    staff_only = register_app(services, practice.id, roles=["admin"])
    provider = make_user(with_totp=True, role="provider")
    from tests.support.base import sign_in

    sign_in(client, provider, clock)
    response = client.get(
        f"/authorize?response_type=code&client_id={staff_only.client_id}&redirect_uri={staff_only.redirect_uri}"
        f"&scope=openid&code_challenge={pkce()[1]}&code_challenge_method=S256",
        follow_redirects=False,
    )
    assert response.status_code == 403 and "not open to your role" in response.text


# -- logout ---------------------------------------------------------------------------------------------------


def test_logout_with_the_apps_id_token_ends_the_twofold_session_and_returns_to_the_app(
    client, services, app_, member, clock
):
    tokens = signed_in_tokens(client, services, app_, member, clock)
    response = client.get(
        "/end-session",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://records.example/signed-out",
            "state": "bye",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "https://records.example/signed-out?state=bye"
    assert client.get("/api/v1/me").status_code == 401


def test_logout_to_an_unregistered_uri_shows_an_error_and_signs_no_one_out(client, services, app_, member, clock):
    tokens = signed_in_tokens(client, services, app_, member, clock)
    response = client.get(
        "/end-session",
        params={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://evil.example/"},
        follow_redirects=False,
    )
    assert response.status_code == 400 and not response.is_redirect
    assert client.get("/api/v1/me").status_code == 200


def test_logout_without_a_hint_asks_the_member_first(client, services, app_, member, clock):
    signed_in_tokens(client, services, app_, member, clock)
    response = client.get("/end-session", follow_redirects=False)
    assert response.status_code == 200 and "Sign out of Twofold?" in response.text
    assert client.get("/api/v1/me").status_code == 200
    confirmed = client.post("/end-session", data={}, follow_redirects=False)
    assert confirmed.status_code == 303 and client.get("/api/v1/me").status_code == 401


# -- keys -----------------------------------------------------------------------------------------------------


def test_rotating_the_key_keeps_the_old_one_in_jwks_until_its_tokens_expired(client, services, app_, member, clock):
    tokens = signed_in_tokens(client, services, app_, member, clock)
    old_kid = id_claims(client, tokens["id_token"])[0]["kid"]
    new_kid = services.oidc_keys.rotate(context=RequestContext.system())
    assert {k["kid"] for k in client.get("/jwks").json()["keys"]} == {old_kid, new_kid}
    fresh = signed_in_tokens(client, services, app_, member, clock)
    assert id_claims(client, fresh["id_token"])[0]["kid"] == new_kid
    clock.advance(seconds=601)
    assert {k["kid"] for k in client.get("/jwks").json()["keys"]} == {new_kid}


def test_no_id_token_is_ever_unsigned(client, services, app_, member, clock):
    tokens = signed_in_tokens(client, services, app_, member, clock)
    header = json.loads(base64.urlsafe_b64decode(tokens["id_token"].split(".")[0] + "=="))
    assert header["alg"] == "RS256" and tokens["id_token"].split(".")[2]
    assert "none" not in client.get("/.well-known/openid-configuration").json()["id_token_signing_alg_values_supported"]


# -- single-page apps: CORS ------------------------------------------------------------------------------

APP_ORIGIN = "https://records.example"  # the origin of app_'s redirect URI


def test_discovery_and_keys_are_readable_from_any_page(client):
    for path in ("/.well-known/openid-configuration", "/jwks"):
        assert (
            client.get(path, headers={"Origin": "https://anywhere.example"}).headers["access-control-allow-origin"]
            == "*"
        )


def test_a_public_client_in_a_browser_reads_its_tokens_and_userinfo_from_its_own_origin(
    client, services, practice, member, clock
):
    public = register_app(services, practice.id, public=True, redirect_uri=f"{APP_ORIGIN}/spa/callback")
    verifier, challenge = pkce()
    answer = authorize(client, BASE, public, member, clock, code_challenge=challenge, code_challenge_method="S256")
    from_app = {"Origin": APP_ORIGIN}
    tokens = exchange(client, BASE, public, answer["code"], verifier, headers=from_app)
    assert tokens.status_code == 200 and tokens.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "origin" in tokens.headers["vary"].lower()
    assert "access-control-allow-credentials" not in tokens.headers  # never a cookie from another origin
    bearer = {"Authorization": f"Bearer {tokens.json()['access_token']}", **from_app}
    claims = client.get("/userinfo", headers=bearer)
    assert claims.status_code == 200 and claims.headers["access-control-allow-origin"] == APP_ORIGIN
    assert claims.json()["email"] == member.email
    # Refusals are readable too, so the app can tell a spent code from a network error.
    again = exchange(client, BASE, public, answer["code"], verifier, headers=from_app)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert again.headers["access-control-allow-origin"] == APP_ORIGIN
    expired = client.get("/userinfo", headers={**from_app, "Authorization": "Bearer nope"})
    assert expired.status_code == 401 and expired.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "WWW-Authenticate" in expired.headers["access-control-expose-headers"]


@pytest.mark.parametrize(("path", "methods"), [("/token", "POST"), ("/userinfo", "GET, POST"), ("/revoke", "POST")])
def test_a_preflight_from_an_apps_origin_is_allowed_with_the_bearer_header(client, app_, path, methods):
    response = client.options(
        path,
        headers={
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert response.headers["access-control-allow-methods"] == methods
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "https://records.example.evil.example",
        "http://records.example",  # another scheme is another origin
        "https://records.example:8443",
        "https://records.example/callback",  # not an origin at all
        "null",
        "",
    ],
)
def test_any_other_origin_gets_no_cors_and_a_refused_preflight(client, app_, member, clock, services, origin):
    preflight = client.options("/token", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
    tokens = signed_in_tokens(client, services, app_, member, clock)
    claims = client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}", "Origin": origin})
    assert claims.status_code == 200 and "access-control-allow-origin" not in claims.headers


def test_a_disabled_apps_origin_is_no_longer_allowed(client, services, practice, app_):
    ask = {"Origin": APP_ORIGIN, "Access-Control-Request-Method": "POST"}
    assert client.options("/token", headers=ask).status_code == 204
    services.apps.update_app(
        practice_id=practice.id, actor_id=None, app_id=app_.app_id, changes={"enabled": False}, context=RequestContext()
    )
    assert client.options("/token", headers=ask).status_code == 403
