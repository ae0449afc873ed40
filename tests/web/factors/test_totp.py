"""Account Settings > Security through the API: set up an authenticator app, confirm
it, turn it off; and the secret it shares is encrypted at rest with rotatable keys.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from tests.conftest import PASSWORD, SECRET_KEY, backends, sign_in
from twofold.crypto import otp
from twofold.crypto.secret_box import DecryptionError, SecretBox
from twofold.settings import Settings
from twofold.store.models import AuditEvent, TotpCredential
from twofold.web.app import create_app
from twofold.wiring import build_services

NEW_KEY = "rotated-secret-key-9876543210-zyxwvutsrqpon"


# The contract's shape does not depend on the database; what changes state runs on both.
ON_BOTH_DATABASES = pytest.mark.parametrize("backend", backends(), indirect=True)


def events(services, name: str) -> list[AuditEvent]:
    with services.db.reading() as s:
        return s.execute(select(AuditEvent).where(AuditEvent.event == name)).scalars().all()


def current_code(secret: str, clock, offset: int = 0) -> str:
    return otp.totp(otp.from_b32(secret), clock.now().timestamp() + offset * otp.PERIOD)


def wrong_code(secret: str, clock) -> str:
    near = {current_code(secret, clock, d) for d in range(-10, 11)}
    return next(c for c in ("111111", "222222", "333333") if c not in near)


def enroll(client, clock) -> dict:
    enrollment = client.post("/api/v1/me/totp").json()
    confirmed = client.post(
        "/api/v1/me/totp/confirm",
        json={"enrollment_id": enrollment["enrollment_id"], "code": current_code(enrollment["secret"], clock)},
    )
    assert confirmed.status_code == 200, confirmed.text
    clock.advance(seconds=otp.PERIOD)  # the confirming code is spent
    return enrollment


def two_factor(client) -> dict:
    return client.get("/api/v1/me").json()["two_factor"]


# -- the enrolment contract ----------------------------------------------------------


def test_enrollment_answers_exactly_the_documented_fields(client, make_user, practice):
    member = make_user()
    sign_in(client, member)
    response = client.post("/api/v1/me/totp")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"enrollment_id", "secret", "otpauth_uri", "qr_svg"}
    assert re.fullmatch(r"[A-Z2-7]{32}", body["secret"])  # unpadded base32, no spaces
    assert len(otp.from_b32(body["secret"])) == 20  # 160 bits
    assert body["qr_svg"].startswith("<svg") and body["qr_svg"].rstrip().endswith("</svg>")


def test_the_otpauth_uri_names_the_practice_and_the_email_with_sha1_six_digits_thirty_seconds(
    client, make_user, practice
):
    member = make_user()
    sign_in(client, member)
    body = client.post("/api/v1/me/totp").json()
    uri = urlsplit(body["otpauth_uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == f"/{practice.name}:{member.email}"
    params = {k: v[0] for k, v in parse_qs(uri.query, strict_parsing=True).items()}
    assert params == {
        "secret": body["secret"],
        "issuer": practice.name,
        "algorithm": "SHA1",
        "digits": "6",
        "period": "30",
    }


def test_an_issuer_with_spaces_and_symbols_survives_the_uri(client, make_practice, make_user):
    practice = make_practice("St. Mary's & Riverside Clinic/Nord")
    member = make_user(practice_id=practice.id)
    sign_in(client, member)
    uri = urlsplit(client.post("/api/v1/me/totp").json()["otpauth_uri"])
    assert parse_qs(uri.query)["issuer"] == [practice.name]
    assert " " not in uri.path and "&" not in uri.path
    assert unquote(uri.path) == f"/{practice.name}:{member.email}"


def test_every_enrollment_gets_a_new_secret(client, make_user):
    sign_in(client, make_user())
    secrets = {client.post("/api/v1/me/totp").json()["secret"] for _ in range(3)}
    assert len(secrets) == 3


# -- confirming ----------------------------------------------------------------------


@ON_BOTH_DATABASES
def test_two_factor_is_on_only_after_a_right_confirming_code(client, anonymous, make_user, clock, services):
    member = make_user()
    sign_in(client, member)
    enrollment = client.post("/api/v1/me/totp").json()
    assert two_factor(client) == {"enabled": False, "methods": [], "recovery_codes_left": 0}
    assert sign_in(anonymous, member).json() == {"status": "signed_in"}  # a pending app asks for nothing

    wrong = client.post(
        "/api/v1/me/totp/confirm",
        json={"enrollment_id": enrollment["enrollment_id"], "code": wrong_code(enrollment["secret"], clock)},
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_code" and wrong.json()["message"]
    assert two_factor(client) == {"enabled": False, "methods": [], "recovery_codes_left": 0}

    right = client.post(
        "/api/v1/me/totp/confirm",
        json={"enrollment_id": enrollment["enrollment_id"], "code": current_code(enrollment["secret"], clock)},
    )
    assert (
        right.status_code == 200 and right.json()["status"] == "enabled" and len(right.json()["recovery_codes"]) == 10
    )
    assert two_factor(client) == {"enabled": True, "methods": ["totp", "recovery_code"], "recovery_codes_left": 10}
    assert [e.subject_id for e in events(services, "account:two_factor:enabled")] == [member.id]
    assert [e.subject_id for e in events(services, "account:two_factor:totp_enrollment_failed")] == [member.id]
    clock.advance(seconds=30)
    assert sign_in(anonymous, member).json()["status"] == "second_factor_required"


def test_a_confirmation_may_use_the_neighbouring_steps_but_no_further(client, make_user, clock):
    sign_in(client, make_user())
    enrollment = client.post("/api/v1/me/totp").json()
    far = client.post(
        "/api/v1/me/totp/confirm",
        json={"enrollment_id": enrollment["enrollment_id"], "code": current_code(enrollment["secret"], clock, 3)},
    )
    assert far.status_code == 400 and "clock" in far.json()["message"].lower()
    near = client.post(
        "/api/v1/me/totp/confirm",
        json={"enrollment_id": enrollment["enrollment_id"], "code": current_code(enrollment["secret"], clock, -1)},
    )
    assert near.status_code == 200


def test_an_enrollment_expires_after_fifteen_minutes(client, make_user, clock):
    sign_in(client, make_user())
    enrollment = client.post("/api/v1/me/totp").json()
    clock.advance(minutes=14)
    assert client.get("/api/v1/me").status_code == 200  # the session stays alive; the set-up does not
    clock.advance(minutes=1)
    response = client.post(
        "/api/v1/me/totp/confirm",
        json={"enrollment_id": enrollment["enrollment_id"], "code": current_code(enrollment["secret"], clock)},
    )
    assert response.status_code == 404 and response.json()["error"] == "enrollment_not_found"
    assert two_factor(client)["enabled"] is False


@ON_BOTH_DATABASES
def test_one_account_cannot_confirm_another_accounts_enrollment(client, anonymous, make_user, clock):
    sign_in(client, make_user())
    theirs = client.post("/api/v1/me/totp").json()
    sign_in(anonymous, make_user())
    response = anonymous.post(
        "/api/v1/me/totp/confirm",
        json={"enrollment_id": theirs["enrollment_id"], "code": current_code(theirs["secret"], clock)},
    )
    assert response.status_code == 404 and response.json()["error"] == "enrollment_not_found"
    assert two_factor(client)["enabled"] is False and two_factor(anonymous)["enabled"] is False


def test_setting_up_again_while_on_is_a_conflict(client, make_user, clock):
    sign_in(client, make_user())
    enroll(client, clock)
    response = client.post("/api/v1/me/totp")
    assert response.status_code == 409 and response.json()["error"] == "two_factor_already_enabled"


def test_the_settings_need_a_session(client):
    for method, path, body in (
        ("POST", "/api/v1/me/totp", None),
        ("POST", "/api/v1/me/totp/confirm", {"enrollment_id": "x", "code": "123456"}),
        ("DELETE", "/api/v1/me/totp", {"password": PASSWORD, "code": "123456"}),
    ):
        response = client.request(method, path, json=body)
        assert response.status_code == 401 and response.json()["error"] == "not_authenticated"


# -- turning off ------------------------------------------------------------------------


@ON_BOTH_DATABASES
def test_turning_off_needs_the_password_and_a_current_code(client, anonymous, make_user, clock, services):
    member = make_user()
    sign_in(client, member)
    enrollment = enroll(client, clock)
    secret = enrollment["secret"]

    wrong_password = client.request(
        "DELETE", "/api/v1/me/totp", json={"password": "not my password", "code": current_code(secret, clock)}
    )
    assert wrong_password.status_code == 401 and wrong_password.json()["error"] == "invalid_credentials"
    assert two_factor(client)["enabled"] is True

    wrong = client.request("DELETE", "/api/v1/me/totp", json={"password": PASSWORD, "code": wrong_code(secret, clock)})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_code"
    assert two_factor(client)["enabled"] is True

    right = client.request(
        "DELETE", "/api/v1/me/totp", json={"password": PASSWORD, "code": current_code(secret, clock)}
    )
    assert right.status_code == 200 and right.json() == {"status": "disabled"}
    assert two_factor(client) == {"enabled": False, "methods": [], "recovery_codes_left": 0}
    assert [e.subject_id for e in events(services, "account:two_factor:disabled")] == [member.id]
    assert len(events(services, "account:two_factor:disable_failed")) == 2
    with services.db.reading() as s:
        assert s.execute(select(TotpCredential).where(TotpCredential.user_id == member.id)).scalars().all() == []
    assert sign_in(anonymous, member).json() == {"status": "signed_in"}


@ON_BOTH_DATABASES
def test_the_code_used_to_sign_in_cannot_turn_two_factor_off(client, make_user, clock):
    member = make_user(with_totp=True)
    used = member.code(clock)
    flow = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).json()["flow_id"]
    assert (
        client.post(f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": used}).status_code == 200
    )
    response = client.request("DELETE", "/api/v1/me/totp", json={"password": PASSWORD, "code": used})
    assert response.status_code == 400 and two_factor(client)["enabled"] is True


def test_turning_off_when_it_is_off_is_a_conflict(client, make_user):
    sign_in(client, make_user())
    response = client.request("DELETE", "/api/v1/me/totp", json={"password": PASSWORD, "code": "123456"})
    assert response.status_code == 409 and response.json()["error"] == "two_factor_not_enabled"


# -- the secret at rest -------------------------------------------------------------------


def stored_rows(services) -> list[dict]:
    with services.db.reading() as s:
        return [dict(row._mapping) for row in s.execute(text("SELECT * FROM totp_credentials"))]


@ON_BOTH_DATABASES
def test_the_totp_secret_is_stored_encrypted(client, make_user, clock, services, settings):
    member = make_user()
    sign_in(client, member)
    enrollment = enroll(client, clock)
    key = otp.from_b32(enrollment["secret"])
    rows = stored_rows(services)
    assert len(rows) == 1
    dumped = repr(rows[0])
    for form in (
        enrollment["secret"],
        enrollment["secret"].lower(),
        otp.grouped(enrollment["secret"]),
        key.hex(),
        repr(key)[2:-1],
    ):
        assert form not in dumped
    sealed = rows[0]["secret_sealed"]
    assert sealed.startswith("v1.")
    assert SecretBox(SECRET_KEY).open(sealed, context=f"totp:{rows[0]['id']}") == key
    with pytest.raises(DecryptionError):
        SecretBox(NEW_KEY).open(sealed, context=f"totp:{rows[0]['id']}")
    with pytest.raises(DecryptionError):  # bound to its row: copied elsewhere it does not open
        SecretBox(SECRET_KEY).open(sealed, context="totp:another-row")
    if services.db.is_sqlite:  # nowhere in the database files either (WAL included)
        database = Path(settings.resolved_database_url.removeprefix("sqlite:///"))
        for path in (database, Path(f"{database}-wal")):
            if path.exists():
                raw = path.read_bytes()
                assert key not in raw and enrollment["secret"].encode() not in raw


def test_the_secret_key_is_not_in_the_database(client, make_user, clock, services):
    sign_in(client, make_user())
    enroll(client, clock)
    with services.db.reading() as s:
        for table in ("totp_credentials", "sessions", "audit_events", "users"):
            # The table names are the constants above, not input.
            assert SECRET_KEY not in repr(s.execute(text(f"SELECT * FROM {table}")).all())  # noqa: S608


@pytest.fixture
def build(tmp_path, database_url, clock, notifier):
    built = []

    def factory(settings: Settings):
        built.append(build_services(settings, clock=clock, notifier=notifier))
        return built[-1]

    yield factory
    for services in built:
        services.close()


@ON_BOTH_DATABASES
def test_after_a_key_rotation_old_secrets_still_open_and_are_resealed_on_use(
    make_user, clock, services, database_url, tmp_path, build, monkeypatch
):
    member = make_user(with_totp=True)  # sealed under SECRET_KEY
    monkeypatch.setenv("TWOFOLD_SECRET_KEY", NEW_KEY)
    monkeypatch.setenv("TWOFOLD_OLD_SECRET_KEYS", f"{SECRET_KEY}, some-even-older-key-0123456789abcdefghij")
    monkeypatch.setenv("TWOFOLD_DATABASE_URL", database_url)
    monkeypatch.setenv("TWOFOLD_VAR_DIR", str(tmp_path / "var"))
    rotated_settings = Settings(_env_file=None)
    assert rotated_settings.old_secret_keys[0] == SECRET_KEY and len(rotated_settings.old_secret_keys) == 2
    rotated = build(rotated_settings)
    with TestClient(create_app(rotated), base_url="http://127.0.0.1") as client:
        assert sign_in(client, member, clock).json() == {"status": "signed_in"}
    sealed = stored_rows(services)[0]["secret_sealed"]
    assert not rotated.box.needs_rotation(sealed)  # re-sealed under the new key at that sign-in

    monkeypatch.delenv("TWOFOLD_OLD_SECRET_KEYS")
    retired = build(Settings(_env_file=None))  # the old key is gone: the row still opens
    clock.advance(seconds=30)
    with TestClient(create_app(retired), base_url="http://127.0.0.1") as client:
        assert sign_in(client, member, clock).json() == {"status": "signed_in"}
