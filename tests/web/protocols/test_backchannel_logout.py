"""OpenID Connect Back-Channel Logout: when a Twofold session ends, each app signed in from it that
registered a logout URI receives a signed logout token over real HTTP; failures are tried again on
a widening schedule, then given up and audited; two processes never send one logout twice."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from tests.conftest import backends
from tests.support.live import all_at_once
from tests.support.live import live_server as serve
from tests.support.logout_receiver import LogoutReceiver
from tests.support.oidc import authorize, exchange, pkce, register_app
from tests.support.practice_admin import events
from twofold.clock import FrozenClock
from twofold.context import RequestContext
from twofold.core.oidc.backchannel import LOGOUT_EVENT, RETRY_DELAYS
from twofold.store.models import OidcLogoutNotice

BASE = "http://127.0.0.1"


@pytest.fixture(params=backends())
def backend(request):
    return request.param


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))  # tokens are read as an app reads them


@pytest.fixture
def member(make_user):
    return make_user(with_totp=True, role="provider")


@pytest.fixture
def receiver():
    found = LogoutReceiver()
    with serve(found.app(), access_log=False) as url:
        found.url = f"{url}/logout"
        yield found


@pytest.fixture
def by_hand(services):
    """Delivery driven by the test (``deliver_due``) rather than by the thread after each commit."""
    services.backchannel.send_after_commit = False
    return services.backchannel


def sign_in_to(client, services, app_, member, clock) -> dict:
    verifier, challenge = pkce()
    answer = authorize(client, BASE, app_, member, clock, code_challenge=challenge, code_challenge_method="S256")
    tokens = exchange(client, BASE, app_, answer["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    return tokens.json()


def decoded(client, token: str):
    keys = KeySet.import_key_set(client.get("/jwks").json())
    return jwt.decode(token, keys, algorithms=["RS256"])


def notices(services) -> list[OidcLogoutNotice]:
    with services.db.reading() as s:
        return list(s.scalars(select(OidcLogoutNotice).order_by(OidcLogoutNotice.id)))


def test_signing_out_posts_a_signed_logout_token_that_names_the_apps_session(
    client, services, practice, member, clock, receiver
):
    app_ = register_app(services, practice.id, backchannel_logout_uri=receiver.url)
    tokens = sign_in_to(client, services, app_, member, clock)
    id_token = decoded(client, tokens["id_token"]).claims

    assert client.post("/api/v1/sign-out").status_code == 200
    [token] = receiver.wait_for(1)
    assert services.backchannel.flush()  # the answer recorded
    assert receiver.content_types == ["application/x-www-form-urlencoded"]
    logout = decoded(client, token)
    assert logout.header["typ"] == "logout+jwt" and logout.header["alg"] == "RS256"
    claims = logout.claims
    assert claims["iss"] == services.settings.resolved_public_origin() == id_token["iss"]
    assert claims["aud"] == app_.client_id
    assert (claims["sub"], claims["sid"]) == (id_token["sub"], id_token["sid"])
    assert claims["events"] == {LOGOUT_EVENT: {}}
    assert claims["exp"] - claims["iat"] == 120 and claims["iat"] == int(clock.now().timestamp())
    assert len(claims["jti"]) >= 16 and "nonce" not in claims
    [notice] = notices(services)
    assert notice.delivered_at is not None and notice.attempts == 1 and notice.reason == "signed_out"


def test_ending_a_members_access_logs_them_out_of_each_app_holding_tokens_from_that_session(
    client, services, practice, member, make_user, clock, receiver
):
    records = register_app(services, practice.id, backchannel_logout_uri=receiver.url, name="Records")
    imaging = register_app(services, practice.id, backchannel_logout_uri=receiver.url, name="Imaging")
    quiet = register_app(services, practice.id, name="Wiki")  # no logout URI: told nothing
    for app_ in (records, imaging, quiet):
        sign_in_to(client, services, app_, member, clock)
    admin = make_user(role="admin")
    services.members.update_member(
        practice_id=practice.id, member_id=member.id, active=False, actor_id=admin.id, context=RequestContext()
    )
    received = receiver.wait_for(2)
    assert services.backchannel.flush()
    audiences = sorted(decoded(client, token).claims["aud"] for token in received)
    assert audiences == sorted([records.client_id, imaging.client_id])
    assert {n.reason for n in notices(services)} == {"deactivated"}


def test_the_idle_limit_ending_a_session_logs_the_app_out_too(client, services, practice, member, clock, by_hand):
    receiver = LogoutReceiver()
    with serve(receiver.app(), access_log=False) as url:
        app_ = register_app(services, practice.id, backchannel_logout_uri=f"{url}/logout")
        sign_in_to(client, services, app_, member, clock)
        clock.advance(minutes=16)  # past the practice's 15 minutes without activity
        assert client.get("/api/v1/me").status_code == 401
        assert [n.reason for n in notices(services)] == ["idle"]
        assert by_hand.deliver_due() == 1
        assert len(receiver.tokens) == 1


def test_a_session_the_app_never_saw_owes_it_nothing(client, services, practice, member, clock, receiver):
    register_app(services, practice.id, backchannel_logout_uri=receiver.url)
    from tests.support.base import sign_in

    sign_in(client, member, clock)
    assert client.post("/api/v1/sign-out").status_code == 200
    assert notices(services) == [] and receiver.tokens == []


def test_an_app_that_fails_is_tried_again_on_schedule_then_given_up_and_audited(
    client, services, practice, member, clock, receiver, by_hand, caplog
):
    receiver.status = 500
    app_ = register_app(services, practice.id, backchannel_logout_uri=receiver.url)
    sign_in_to(client, services, app_, member, clock)
    assert client.post("/api/v1/sign-out").status_code == 200
    caplog.set_level(logging.INFO)

    assert by_hand.deliver_due() == 0
    [notice] = notices(services)
    assert (notice.attempts, notice.last_status, notice.next_try_at) == (1, "HTTP 500", clock.now() + RETRY_DELAYS[0])
    assert by_hand.deliver_due() == 0 and len(receiver.tokens) == 1  # not due yet: nothing sent
    for delay in RETRY_DELAYS:
        clock.advance(delay)
        by_hand.deliver_due()
    [notice] = notices(services)
    assert notice.attempts == len(RETRY_DELAYS) + 1 == len(receiver.tokens)
    assert notice.given_up_at == clock.now() and notice.next_try_at is None
    [undelivered] = events(services, "practice:app:backchannel_logout_undelivered")
    assert undelivered.details == {"app_id": app_.app_id, "name": "Patient Records", "tries": 6, "last": "HTTP 500"}
    clock.advance(days=1)
    assert by_hand.deliver_due() == 0 and len(receiver.tokens) == 6  # given up: never again
    # The logs name the app and the answer, never a token.
    assert any("back-channel logout to app" in record.getMessage() for record in caplog.records)
    assert not any(token in caplog.text for token in receiver.tokens)


def test_a_later_try_that_succeeds_ends_the_retries(client, services, practice, member, clock, receiver, by_hand):
    receiver.status = 503
    app_ = register_app(services, practice.id, backchannel_logout_uri=receiver.url)
    sign_in_to(client, services, app_, member, clock)
    client.post("/api/v1/sign-out")
    by_hand.deliver_due()
    receiver.status = 204
    clock.advance(RETRY_DELAYS[0])
    assert by_hand.deliver_due() == 1
    [notice] = notices(services)
    assert notice.delivered_at == clock.now() and notice.next_try_at is None and notice.attempts == 2
    clock.advance(days=1)
    assert by_hand.deliver_due() == 0 and len(receiver.tokens) == 2


def test_an_unreachable_app_is_a_failed_try_not_an_error(client, services, practice, member, clock, by_hand):
    app_ = register_app(services, practice.id, backchannel_logout_uri="http://127.0.0.1:9/logout")  # discard port
    sign_in_to(client, services, app_, member, clock)
    client.post("/api/v1/sign-out")
    assert by_hand.deliver_due() == 0
    [notice] = notices(services)
    assert notice.attempts == 1 and notice.last_status.startswith("no answer")


def test_processes_delivering_at_once_send_each_logout_once(
    client, services, practice, member, make_user, clock, receiver, by_hand
):
    apps = [register_app(services, practice.id, backchannel_logout_uri=receiver.url, name=f"App {n}") for n in range(4)]
    for app_ in apps:
        sign_in_to(client, services, app_, member, clock)
    client.delete("/api/v1/me/sessions", params={"include_current": "true"})
    confirmed = all_at_once(8, lambda _: by_hand.deliver_due())
    assert sum(confirmed) == 4 and len(receiver.tokens) == 4
    assert sorted(decoded(client, t).claims["aud"] for t in receiver.tokens) == sorted(a.client_id for a in apps)


def test_discovery_says_back_channel_logout_is_supported(client):
    doc = client.get("/.well-known/openid-configuration").json()
    assert doc["backchannel_logout_supported"] is True and doc["backchannel_logout_session_supported"] is True


def test_the_logout_uri_is_registered_changed_and_removed_through_the_api(client, services, practice, make_user, clock):
    from tests.support.base import sign_in

    admin = make_user(role="admin", with_totp=True)
    sign_in(client, admin, clock)
    made = client.post(
        "/api/v1/practice/apps",
        json={
            "name": "Records",
            "redirect_uris": ["https://records.example/cb"],
            "backchannel_logout_uri": "https://records.example/backchannel",
        },
    )
    assert made.status_code == 201 and made.json()["backchannel_logout_uri"] == "https://records.example/backchannel"
    app_id = made.json()["id"]
    moved = client.patch(
        f"/api/v1/practice/apps/{app_id}", json={"backchannel_logout_uri": "https://records.example/logout"}
    )
    assert moved.status_code == 200 and moved.json()["backchannel_logout_uri"] == "https://records.example/logout"
    [changed] = events(services, "practice:app:oidc_client_changed")
    assert changed.details["changes"] == {
        "backchannel_logout_uri": ["https://records.example/backchannel", "https://records.example/logout"]
    }
    refused = client.patch(
        f"/api/v1/practice/apps/{app_id}", json={"backchannel_logout_uri": "http://records.example/logout"}
    )
    assert refused.status_code == 422 and "https://" in refused.json()["message"]
    assert client.get(f"/api/v1/practice/apps/{app_id}").json()["backchannel_logout_uri"] == (
        "https://records.example/logout"
    )
    removed = client.patch(f"/api/v1/practice/apps/{app_id}", json={"backchannel_logout_uri": None})
    assert removed.status_code == 200 and removed.json()["backchannel_logout_uri"] is None


def test_settled_logouts_are_purged_after_the_keeping_period_and_pending_ones_never(
    client, services, practice, member, clock, receiver, by_hand
):
    delivered = register_app(services, practice.id, backchannel_logout_uri=receiver.url, name="Records")
    failing = register_app(services, practice.id, backchannel_logout_uri="http://127.0.0.1:9/logout", name="Old")
    for app_ in (delivered, failing):
        sign_in_to(client, services, app_, member, clock)
    client.post("/api/v1/sign-out")
    by_hand.deliver_due()
    assert services.retention.purge()["settled back-channel logouts"] == 0  # delivered just now: kept
    clock.advance(days=services.settings.purge_after_days, minutes=1)
    assert services.retention.purge()["settled back-channel logouts"] == 1
    [left] = notices(services)
    assert left.delivered_at is None and left.given_up_at is None  # still owed: kept until settled


def test_a_logout_owed_to_an_app_whose_address_was_removed_is_settled_not_retried(
    client, services, practice, member, clock, receiver, by_hand
):
    app_ = register_app(services, practice.id, backchannel_logout_uri=receiver.url)
    sign_in_to(client, services, app_, member, clock)
    client.post("/api/v1/sign-out")
    services.oidc_clients.change_uris(
        practice_id=practice.id,
        app_id=app_.app_id,
        redirect_uris=None,
        post_logout_redirect_uris=None,
        backchannel_logout_uri="",
        context=RequestContext(),
    )
    assert by_hand.deliver_due() == 0 and receiver.tokens == []
    [notice] = notices(services)
    assert notice.given_up_at == clock.now() and notice.next_try_at is None
    assert notice.last_status == "no back-channel logout URI any more"
    assert events(services, "practice:app:backchannel_logout_undelivered") == []  # the admin removed it
