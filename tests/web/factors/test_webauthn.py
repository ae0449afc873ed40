"""Security keys and passkeys through the JSON API, with a software authenticator (real ES256/RS256 keys,
real CBOR, real signatures): adding, listing, renaming, removing; the sign-in step; passkey sign-in; and
every refusal the contract names, each a clear 4xx that changes nothing (or only counts and audits)."""

from __future__ import annotations

import copy
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import PASSWORD, backends, sign_in
from tests.support import authenticator
from tests.support.authenticator import SoftwareKey, b64url, unb64url
from twofold.context import RequestContext
from twofold.store.models import AuditEvent, Practice, UserSession, WebAuthnChallenge, WebAuthnCredential

ORIGIN = "http://127.0.0.1"  # the TestClient's base URL: the served origin, so the RP id is 127.0.0.1
ON_BOTH_DATABASES = pytest.mark.parametrize("backend", backends(), indirect=True)


def events(services, name: str) -> list[AuditEvent]:
    with services.db.reading() as s:
        return list(s.execute(select(AuditEvent).where(AuditEvent.event == name)).scalars())


def count(services, model) -> int:
    with services.db.reading() as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


def add_key(client, key: SoftwareKey, name: str = "YubiKey 5C", **options) -> dict:
    started = client.post("/api/v1/me/webauthn/registration/options")
    assert started.status_code == 200, started.text
    body = started.json()
    credential = authenticator.register(body["options"], key, origin=ORIGIN, **options)
    added = client.post(
        "/api/v1/me/webauthn/registration",
        json={"registration_id": body["registration_id"], "credential": credential, "name": name},
    )
    assert added.status_code == 200, added.text
    return added.json()


@pytest.fixture
def keyed(client, make_user):
    """A member signed in on ``client`` who added one security key (2FA turned on by it)."""
    member = make_user()
    assert sign_in(client, member).json()["status"] == "signed_in"
    key = SoftwareKey()
    added = add_key(client, key)
    return member, key, added


def password_step(client, member) -> dict:
    started = client.post("/api/v1/sign-in", json={"email": member.email, "password": member.password})
    assert started.json()["status"] == "second_factor_required", started.text
    return started.json()


def key_options(client, flow_id: str) -> dict:
    answer = client.post(f"/api/v1/sign-in/{flow_id}/webauthn/options")
    assert answer.status_code == 200, answer.text
    return answer.json()["options"]


def second_factor(client, flow_id: str, credential) -> object:
    return client.post(
        f"/api/v1/sign-in/{flow_id}/second-factor", json={"method": "webauthn", "credential": credential}
    )


# -- adding, listing, renaming, removing -------------------------------------------------------


@ON_BOTH_DATABASES
def test_the_first_key_turns_two_factor_on_with_backup_codes(client, services, make_user, mailbox):
    member = make_user()
    sign_in(client, member)
    added = add_key(client, SoftwareKey(), name="Desk key")
    assert added["status"] == "added" and len(added["recovery_codes"]) == 10
    assert client.get("/api/v1/me").json()["two_factor"]["enabled"] is True
    listed = client.get("/api/v1/me/webauthn").json()["credentials"]
    assert [(c["id"], c["name"], c["last_used_at"], c["backed_up"]) for c in listed] == [
        (added["id"], "Desk key", None, False)
    ]
    assert "security key or passkey" in mailbox.wait_for(1, to=member.email)[0].text
    second = add_key(client, SoftwareKey(algorithm="RS256", synced=True), name="Phone passkey")
    assert "recovery_codes" not in second
    kinds = {
        c["name"]: (c["device_bound"], c["backed_up"]) for c in client.get("/api/v1/me/webauthn").json()["credentials"]
    }
    assert kinds == {"Desk key": (True, False), "Phone passkey": (False, True)}
    assert len(events(services, "account:webauthn:added")) == 2


def test_rename_and_remove_with_reauthentication(client, services, keyed, mailbox):
    _member, key, added = keyed
    renamed = client.patch(f"/api/v1/me/webauthn/{added['id']}", json={"name": "  Blue   key "})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Blue key"
    second = add_key(client, SoftwareKey(), name="Spare")
    wrong = client.request(
        "DELETE", f"/api/v1/me/webauthn/{second['id']}", json={"password": PASSWORD, "code": "zzzz-zzzz"}
    )
    assert wrong.status_code == 400 and count(services, WebAuthnCredential) == 2
    # Confirmed with the other key itself (an assertion as the code).
    options = client.post("/api/v1/me/webauthn/reauth/options").json()["options"]
    proof = authenticator.sign_in_with(options, key, origin=ORIGIN)
    removed = client.request(
        "DELETE", f"/api/v1/me/webauthn/{second['id']}", json={"password": PASSWORD, "code": proof}
    )
    assert removed.status_code == 200, removed.text
    assert [c["name"] for c in client.get("/api/v1/me/webauthn").json()["credentials"]] == ["Blue key"]
    assert events(services, "account:webauthn:removed")[0].details["proof"] == "webauthn"


def test_the_last_key_cannot_be_removed_while_it_is_the_only_method(client, services, keyed):
    _member, _key, added = keyed
    answer = client.request(
        "DELETE", f"/api/v1/me/webauthn/{added['id']}", json={"password": PASSWORD, "code": added["recovery_codes"][0]}
    )
    assert answer.status_code == 409 and answer.json()["error"] == "last_method"
    assert count(services, WebAuthnCredential) == 1


def test_another_members_key_is_not_found(client, anonymous, keyed, make_user):
    _member, _key, added = keyed
    other = make_user()
    sign_in(anonymous, other)
    assert anonymous.patch(f"/api/v1/me/webauthn/{added['id']}", json={"name": "mine"}).status_code == 404


# -- the sign-in step -----------------------------------------------------------------------------


@ON_BOTH_DATABASES
def test_sign_in_with_the_key_after_the_password(client, anonymous, services, keyed):
    member, key, _ = keyed
    flow = password_step(anonymous, member)
    assert flow["methods"][0] == "webauthn"  # offered first
    options = key_options(anonymous, flow["flow_id"])
    assert options["userVerification"] == "preferred" and options["rpId"] == "127.0.0.1"
    assert [c["id"] for c in options["allowCredentials"]] == [key.id]
    answer = second_factor(anonymous, flow["flow_id"], authenticator.sign_in_with(options, key, origin=ORIGIN))
    assert answer.status_code == 200 and answer.json() == {"status": "signed_in"}
    with services.db.reading() as s:
        session = s.execute(select(UserSession).order_by(UserSession.id.desc())).scalars().first()
        assert session.amr == "pwd hwk mfa"
    assert client.get("/api/v1/me/webauthn").json()["credentials"][0]["last_used_at"] is not None


def test_a_synced_passkey_is_recorded_as_a_software_key(anonymous, client, services, make_user):
    member = make_user()
    sign_in(client, member)
    key = SoftwareKey(synced=True)
    add_key(client, key)
    flow = password_step(anonymous, member)
    options = key_options(anonymous, flow["flow_id"])
    assert (
        second_factor(anonymous, flow["flow_id"], authenticator.sign_in_with(options, key, origin=ORIGIN)).status_code
        == 200
    )
    with services.db.reading() as s:
        assert s.execute(select(UserSession.amr).order_by(UserSession.id.desc())).scalars().first() == "pwd swk mfa"


def refused_unchanged(services, answer, status: int = 401) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] in {"invalid_code", "invalid_input", "malformed_credential"}
    assert "Traceback" not in answer.text


@pytest.mark.parametrize(
    "tamper",
    ["wrong_origin", "wrong_rp_id", "other_flow_challenge", "another_key_same_id", "bad_signature"],
)
def test_refusals_of_the_sign_in_step(anonymous, app, services, keyed, tamper):
    member, key, _ = keyed
    flow = password_step(anonymous, member)
    options = key_options(anonymous, flow["flow_id"])
    if tamper == "wrong_origin":
        credential = authenticator.sign_in_with(options, key, origin="https://twofold.example.org")
    elif tamper == "wrong_rp_id":
        credential = authenticator.sign_in_with(options, key, origin=ORIGIN, rp_id="evil.example")
    elif tamper == "other_flow_challenge":
        with TestClient(app, base_url="http://127.0.0.1") as elsewhere:  # a flow is bound to its own browser
            other = password_step(elsewhere, member)
            credential = authenticator.sign_in_with(key_options(elsewhere, other["flow_id"]), key, origin=ORIGIN)
    elif tamper == "another_key_same_id":
        credential = authenticator.sign_in_with(options, SoftwareKey(credential_id=key.credential_id), origin=ORIGIN)
    else:
        credential = authenticator.sign_in_with(options, key, origin=ORIGIN)
        signature = bytearray(unb64url(credential["response"]["signature"]))
        signature[-1] ^= 1
        credential["response"]["signature"] = b64url(bytes(signature))
    before = count(services, UserSession)
    refused_unchanged(services, second_factor(anonymous, flow["flow_id"], credential))
    assert count(services, UserSession) == before
    failed = events(services, "account:sign_in:code_failed")
    assert failed[-1].details["method"] == "webauthn"


def test_a_replayed_assertion_and_a_reused_challenge_are_refused(anonymous, services, keyed):
    member, key, _ = keyed
    flow = password_step(anonymous, member)
    options = key_options(anonymous, flow["flow_id"])
    credential = authenticator.sign_in_with(options, key, origin=ORIGIN)
    assert second_factor(anonymous, flow["flow_id"], credential).status_code == 200
    anonymous.cookies.clear()
    again = password_step(anonymous, member)
    # The same assertion, replayed into a new flow: its challenge was used up.
    refused_unchanged(services, second_factor(anonymous, again["flow_id"], credential))
    # A fresh signature over the used challenge (a reused challenge) is refused too.
    reused = authenticator.sign_in_with(options, key, origin=ORIGIN)
    refused_unchanged(services, second_factor(anonymous, again["flow_id"], reused))
    assert events(services, "account:sign_in:code_failed")[-1].details["reason"] == "unknown_or_used_challenge"


def test_an_expired_challenge_is_refused(anonymous, services, keyed, clock):
    member, key, _ = keyed
    flow = password_step(anonymous, member)
    options = key_options(anonymous, flow["flow_id"])
    clock.advance(seconds=5 * 60)
    refused_unchanged(
        services, second_factor(anonymous, flow["flow_id"], authenticator.sign_in_with(options, key, origin=ORIGIN))
    )
    assert events(services, "account:sign_in:code_failed")[-1].details["reason"] == "challenge_expired"


def test_a_counter_that_goes_back_refuses_audits_and_emails(anonymous, services, keyed, mailbox):
    member, key, _ = keyed
    key.sign_count = 10
    flow = password_step(anonymous, member)
    assert (
        second_factor(
            anonymous,
            flow["flow_id"],
            authenticator.sign_in_with(key_options(anonymous, flow["flow_id"]), key, origin=ORIGIN),
        ).status_code
        == 200
    )
    anonymous.cookies.clear()
    clone = SoftwareKey(credential_id=key.credential_id, private_key=key.private_key, sign_count=3)
    flow = password_step(anonymous, member)
    answer = second_factor(
        anonymous,
        flow["flow_id"],
        authenticator.sign_in_with(key_options(anonymous, flow["flow_id"]), clone, origin=ORIGIN),
    )
    refused_unchanged(services, answer)
    clone_events = events(services, "account:webauthn:possible_clone")
    assert [(e.details["stored_count"], e.details["received_count"]) for e in clone_events] == [(11, 4)]
    subjects = [m.subject for m in mailbox.wait_for(2, to=member.email)]
    assert any("copied" in subject for subject in subjects)


def test_another_users_credential_is_refused(anonymous, client, services, keyed, make_user):
    _member, key, _ = keyed
    other = make_user()
    client.cookies.clear()
    sign_in(client, other)
    add_key(client, SoftwareKey())
    flow = password_step(anonymous, other)
    # The first member's key answers the other member's challenge.
    credential = authenticator.sign_in_with(key_options(anonymous, flow["flow_id"]), key, origin=ORIGIN)
    refused_unchanged(services, second_factor(anonymous, flow["flow_id"], credential))
    assert events(services, "account:sign_in:code_failed")[-1].details["reason"] == "unknown_credential"


@pytest.mark.parametrize(
    "credential",
    [
        {},
        {"id": "x", "type": "public-key", "response": {}},
        {
            "id": "AAAA",
            "rawId": "AAAA",
            "type": "public-key",
            "response": {"clientDataJSON": "!!", "authenticatorData": "", "signature": ""},
        },
        {
            "id": "AAAA",
            "rawId": "AAAB",
            "type": "public-key",
            "response": {"clientDataJSON": b64url(b"{}"), "authenticatorData": "AA", "signature": "AA"},
        },
        {
            "id": "A" * 2000,
            "rawId": "A" * 2000,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(json.dumps({"challenge": "AA"}).encode()),
                "authenticatorData": "AA",
                "signature": "AA",
            },
        },
    ],
    ids=["empty", "no-fields", "bad-base64", "id-mismatch", "huge-id"],
)
def test_a_malformed_credential_is_a_clear_4xx_that_changes_nothing(anonymous, services, keyed, credential):
    member, _key, _ = keyed
    flow = password_step(anonymous, member)
    key_options(anonymous, flow["flow_id"])
    failures = len(events(services, "account:sign_in:code_failed"))
    answer = second_factor(anonymous, flow["flow_id"], credential)
    assert 400 <= answer.status_code < 500 and "error" in answer.json()
    assert len(events(services, "account:sign_in:code_failed")) == failures  # nothing counted


def test_the_second_factor_takes_a_code_or_a_credential_not_both(anonymous, keyed):
    member, _key, _ = keyed
    flow = password_step(anonymous, member)
    both = anonymous.post(
        f"/api/v1/sign-in/{flow['flow_id']}/second-factor",
        json={"method": "webauthn", "code": "123456", "credential": {"id": "x"}},
    )
    assert both.status_code == 422
    neither = anonymous.post(f"/api/v1/sign-in/{flow['flow_id']}/second-factor", json={"method": "webauthn"})
    assert neither.status_code == 422


def test_options_for_a_flow_without_keys_or_an_unknown_flow_are_refused(anonymous, make_user, clock):
    member = make_user(with_totp=True)
    flow = password_step(anonymous, member)
    assert "webauthn" not in flow["methods"]
    assert (
        anonymous.post(f"/api/v1/sign-in/{flow['flow_id']}/webauthn/options").json()["error"] == "method_not_available"
    )
    assert anonymous.post("/api/v1/sign-in/nope/webauthn/options").status_code == 404


def test_a_practice_that_forbids_keys_does_not_offer_them(client, anonymous, services, keyed):
    member, _key, _ = keyed
    with services.db.transaction() as s:
        s.get(Practice, member.practice_id).allowed_methods = ["totp", "email"]
    assert client.post("/api/v1/me/webauthn/registration/options").json()["error"] == "webauthn_not_allowed"
    flow = password_step(anonymous, member)
    assert "webauthn" not in flow["methods"]


# -- passkey sign-in ------------------------------------------------------------------------------


def passkey(client) -> dict:
    answer = client.post("/api/v1/passkey/options")
    assert answer.status_code == 200, answer.text
    return answer.json()


@ON_BOTH_DATABASES
def test_sign_in_with_a_passkey_alone(anonymous, services, keyed):
    member, key, _ = keyed
    started = passkey(anonymous)
    assert started["options"]["userVerification"] == "required" and started["options"].get("allowCredentials", []) == []
    credential = authenticator.sign_in_with(started["options"], key, origin=ORIGIN)
    answer = anonymous.post(
        "/api/v1/passkey/sign-in", json={"passkey_flow_id": started["passkey_flow_id"], "credential": credential}
    )
    assert answer.status_code == 200 and answer.json() == {"status": "signed_in"}
    assert anonymous.get("/api/v1/me").json()["email"] == member.email
    with services.db.reading() as s:
        assert s.execute(select(UserSession.amr).order_by(UserSession.id.desc())).scalars().first() == "hwk user mfa"
    # Replayed: the passkey flow is used up.
    again = anonymous.post(
        "/api/v1/passkey/sign-in", json={"passkey_flow_id": started["passkey_flow_id"], "credential": credential}
    )
    assert again.status_code == 404 and again.json()["error"] == "passkey_flow_not_found"


@pytest.mark.parametrize("tamper", ["no_user_verification", "no_user_handle", "wrong_origin", "unknown_key", "expired"])
def test_refusals_of_passkey_sign_in(anonymous, services, keyed, clock, tamper):
    _member, key, _ = keyed
    started = passkey(anonymous)
    options = started["options"]
    if tamper == "no_user_verification":
        credential = authenticator.sign_in_with(options, key, origin=ORIGIN, user_verified=False)
    elif tamper == "no_user_handle":
        credential = authenticator.sign_in_with(options, key, origin=ORIGIN, with_user_handle=False)
    elif tamper == "wrong_origin":
        credential = authenticator.sign_in_with(options, key, origin="http://127.0.0.1:9999")
    elif tamper == "unknown_key":
        credential = authenticator.sign_in_with(options, SoftwareKey(user_handle=key.user_handle), origin=ORIGIN)
    else:
        credential = authenticator.sign_in_with(options, key, origin=ORIGIN)
        clock.advance(seconds=301)
    sessions = count(services, UserSession)
    answer = anonymous.post(
        "/api/v1/passkey/sign-in", json={"passkey_flow_id": started["passkey_flow_id"], "credential": credential}
    )
    expected = (410, "flow_expired") if tamper == "expired" else (401, "passkey_refused")
    assert (answer.status_code, answer.json()["error"]) == expected
    assert count(services, UserSession) == sessions


def test_passkey_sign_in_can_be_turned_off_by_the_practice(anonymous, services, keyed):
    member, key, _ = keyed
    with services.db.transaction() as s:
        s.get(Practice, member.practice_id).passkey_sign_in = False
    started = passkey(anonymous)
    credential = authenticator.sign_in_with(started["options"], key, origin=ORIGIN)
    answer = anonymous.post(
        "/api/v1/passkey/sign-in", json={"passkey_flow_id": started["passkey_flow_id"], "credential": credential}
    )
    assert answer.status_code == 403 and answer.json()["error"] == "passkey_sign_in_not_allowed"


def test_a_malformed_passkey_credential_is_refused_and_nothing_is_written(anonymous, services, keyed):
    started = passkey(anonymous)
    audit_rows = count(services, AuditEvent)
    for credential in ({"id": "x"}, {"id": "AA", "rawId": "AA", "type": "public-key", "response": "no"}):
        answer = anonymous.post(
            "/api/v1/passkey/sign-in", json={"passkey_flow_id": started["passkey_flow_id"], "credential": credential}
        )
        assert answer.status_code == 422 and answer.json()["error"] == "malformed_credential"
    assert count(services, AuditEvent) == audit_rows
    assert count(services, WebAuthnChallenge) == 1


def test_registration_refusals(client, services, make_user, clock):
    member = make_user()
    sign_in(client, member)
    started = client.post("/api/v1/me/webauthn/registration/options").json()
    key = SoftwareKey()
    wrong_origin = authenticator.register(started["options"], key, origin="https://phish.example")
    answer = client.post(
        "/api/v1/me/webauthn/registration",
        json={"registration_id": started["registration_id"], "credential": wrong_origin, "name": "k"},
    )
    assert answer.status_code == 422 and answer.json()["error"] == "registration_refused"
    tampered = copy.deepcopy(authenticator.register(started["options"], key, origin=ORIGIN))
    answer = client.post(
        "/api/v1/me/webauthn/registration",
        json={"registration_id": "unknown", "credential": tampered, "name": "k"},
    )
    assert answer.status_code == 404
    clock.advance(seconds=301)
    answer = client.post(
        "/api/v1/me/webauthn/registration",
        json={"registration_id": started["registration_id"], "credential": tampered, "name": "k"},
    )
    assert answer.status_code == 404 and answer.json()["error"] == "registration_not_found"
    assert count(services, WebAuthnCredential) == 0


# -- the practice's policy ------------------------------------------------------------------------


def set_policy(services, practice_id: int, **changes) -> None:
    services.policies.update(practice_id=practice_id, actor_id=None, changes=changes, context=RequestContext())


def test_phishing_resistant_roles_limit_sign_in_to_the_key_and_backup_codes(
    client, anonymous, services, clock, make_user, mailbox
):
    admin = make_user(role="admin", with_totp=True)
    sign_in(client, admin, clock)
    put = client.put(
        "/api/v1/practice/policy", json={"phishing_resistant_roles": ["provider"], "passkey_sign_in": False}
    )
    assert put.status_code == 200, put.text
    assert put.json()["phishing_resistant_roles"] == ["provider"] and put.json()["passkey_sign_in"] is False
    assert client.put("/api/v1/practice/policy", json={"phishing_resistant_roles": ["nurse"]}).status_code == 422
    no_key_allowed = client.put(
        "/api/v1/practice/policy", json={"allowed_methods": ["totp", "email"], "phishing_resistant_roles": ["provider"]}
    )
    assert no_key_allowed.status_code == 422 and "phishing_resistant_roles" in no_key_allowed.json()["message"]

    provider = make_user(role="provider", with_totp=True)
    # With the app only, the app still works (inside the grace period) ...
    assert sign_in(anonymous, provider, clock).json() == {"status": "signed_in"}
    key = SoftwareKey()
    backup_codes = provider.recovery_codes
    add_key(anonymous, key)
    anonymous.cookies.clear()
    # ... and once a key is set up, sign-in offers only the key and backup codes.
    flow = password_step(anonymous, provider)
    assert flow["methods"] == ["webauthn", "recovery_code"]
    clock.advance(seconds=30)
    app = anonymous.post(
        f"/api/v1/sign-in/{flow['flow_id']}/second-factor", json={"method": "totp", "code": provider.code(clock)}
    )
    assert app.status_code == 400 and app.json()["error"] == "method_not_available"
    backup = anonymous.post(
        f"/api/v1/sign-in/{flow['flow_id']}/second-factor", json={"method": "recovery_code", "code": backup_codes[0]}
    )
    assert backup.status_code == 200, backup.text
    assert any("backup code" in m.subject.lower() for m in mailbox.wait_for(3, to=provider.email))


def test_a_phishing_resistant_role_without_a_key_is_held_at_enrolment_after_the_grace_period(
    client, services, clock, make_user, practice
):
    set_policy(services, practice.id, phishing_resistant_roles=["staff"], grace_days=3)
    staff = make_user(role="staff", with_totp=True)
    clock.advance(days=3, seconds=1)
    assert sign_in(client, staff, clock).json() == {"status": "signed_in"}
    held = client.get("/api/v1/me/webauthn")
    assert held.status_code == 403 and held.json()["error"] == "two_factor_required"
    prompt = client.get("/account/two-factor")
    assert "security key or passkey" in prompt.text
    add_key(client, SoftwareKey())  # the enrolment route stays open
    assert client.get("/api/v1/me/webauthn").status_code == 200


def test_failed_key_answers_share_the_code_throttle(anonymous, services, keyed):
    member, key, _ = keyed
    flow = password_step(anonymous, member)
    impostor = SoftwareKey(credential_id=key.credential_id)
    statuses = []
    for _ in range(5):
        credential = authenticator.sign_in_with(key_options(anonymous, flow["flow_id"]), impostor, origin=ORIGIN)
        statuses.append(second_factor(anonymous, flow["flow_id"], credential).status_code)
    assert statuses == [401] * 5
    # Five wrong answers end the flow; a new one starts with the account's code limit already reached.
    assert anonymous.post(f"/api/v1/sign-in/{flow['flow_id']}/webauthn/options").status_code == 410
    again = password_step(anonymous, member)
    # The app's codes count against the same limit: switching methods gives no fresh tries.
    blocked = anonymous.post(
        f"/api/v1/sign-in/{again['flow_id']}/second-factor", json={"method": "recovery_code", "code": "zzzz-zzzz"}
    )
    assert blocked.status_code == 429


def test_a_key_sign_in_can_remember_the_browser(anonymous, services, keyed, mailbox):
    member, key, _ = keyed
    flow = password_step(anonymous, member)
    credential = authenticator.sign_in_with(key_options(anonymous, flow["flow_id"]), key, origin=ORIGIN)
    answer = anonymous.post(
        f"/api/v1/sign-in/{flow['flow_id']}/second-factor",
        json={"method": "webauthn", "credential": credential, "remember_browser": True},
    )
    assert answer.status_code == 200
    anonymous.post("/api/v1/sign-out")
    again = anonymous.post("/api/v1/sign-in", json={"email": member.email, "password": member.password})
    assert again.json() == {"status": "signed_in"}  # the remembered browser asks for no key


def test_the_security_page_lists_renames_and_refuses_a_removal_in_place(client, keyed):
    _member, _key, added = keyed
    page = client.get("/account/security")
    assert page.status_code == 200 and "YubiKey 5C" in page.text and "Device-bound security key" in page.text
    renamed = client.post(f"/account/security/webauthn/{added['id']}/rename", data={"name": "Keyring key"})
    assert renamed.status_code == 200 and "The key is renamed." in renamed.text and "Keyring key" in renamed.text
    refused = client.post(
        f"/account/security/webauthn/{added['id']}/remove", data={"password": "wrong password!", "code": "123456"}
    )
    assert refused.status_code == 409 and "only sign-in method besides backup codes" in refused.text
    assert "Keyring key" in refused.text
    garbled = client.post("/account/security/webauthn", data={"registration_id": "x", "credential": "{", "name": "k"})
    assert garbled.status_code == 422 and "not understood" in garbled.text


@pytest.mark.parametrize(
    ("next_", "lands_on"),
    [
        ("https://files.riverside.example/reports/7?q=1", "https://files.riverside.example/reports/7?q=1"),
        ("/account/sessions", "/account/sessions"),
        ("https://evil.example/", "/account/security"),
        ("https://files.other.example/", "/account/security"),  # an app, but of another practice
    ],
)
def test_the_passkey_form_returns_to_the_page_asked_for(anonymous, services, keyed, make_practice, next_, lands_on):
    member, key, _ = keyed
    context = RequestContext()
    services.apps.add_app(
        practice_id=member.practice_id,
        actor_id=None,
        name="Files",
        url="https://files.riverside.example",
        context=context,
    )
    other = make_practice("Other Practice")
    services.apps.add_app(
        practice_id=other.id, actor_id=None, name="Files", url="https://files.other.example", context=context
    )
    started = passkey(anonymous)
    credential = authenticator.sign_in_with(started["options"], key, origin=ORIGIN)
    answer = anonymous.post(
        "/sign-in/passkey",
        data={"passkey_flow_id": started["passkey_flow_id"], "credential": json.dumps(credential), "next": next_},
        follow_redirects=False,
    )
    if lands_on.startswith("/"):
        assert (answer.status_code, answer.headers["location"]) == (303, lands_on)
    else:  # another host: a page that moves on by itself (a form's 303 off-site would be blocked by its CSP)
        assert answer.status_code == 200 and f'href="{lands_on}"' in answer.text.replace("&amp;", "&")
    assert anonymous.get("/api/v1/me").json()["email"] == member.email
