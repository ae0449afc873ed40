"""No password, code, TOTP secret or session token in any log record or audit detail.

Everything is logged at DEBUG (SQLAlchemy's statements and parameters included)
while a member signs in, sets up an app and turns it off through the API and the
pages, over real HTTP so that uvicorn's own records are captured too.
"""

from __future__ import annotations

import json
import logging
import re

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.support.live import live_server
from twofold.crypto import otp
from twofold.store.models import AuditEvent
from twofold.web.server import RedactTokens

WRONG_PASSWORD = "Tr0ub4dor&3-not-it"


def wrong_code(key: bytes, clock) -> str:
    near = {otp.totp(key, clock.now().timestamp() + 30 * d) for d in range(-10, 11)}
    return next(c for c in ("271828", "314159", "141421") if c not in near)


def code(key: bytes, clock) -> str:
    return otp.totp(key, clock.now().timestamp())


@pytest.fixture
def everything_logged(caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy.engine", "twofold"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_no_secret_reaches_a_log_record_or_an_audit_detail(everything_logged, app, services, make_user, clock):
    member = make_user()
    secrets_seen: list[str] = [PASSWORD, WRONG_PASSWORD]
    codes_seen: list[str] = []

    def remember_code(value: str) -> str:
        codes_seen.append(value)
        return value

    with live_server(app) as base:
        with httpx.Client(base_url=base) as api:
            answer = api.post("/api/v1/sign-in", json={"email": member.email, "password": WRONG_PASSWORD})
            assert answer.status_code == 401
            answer = api.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD})
            secrets_seen.append(answer.cookies["twofold_session"])

            enrollment = api.post("/api/v1/me/totp").json()
            key = otp.from_b32(enrollment["secret"])
            secrets_seen += [enrollment["secret"], otp.grouped(enrollment["secret"]), key.hex()]
            confirm = {"enrollment_id": enrollment["enrollment_id"]}
            assert (
                api.post(
                    "/api/v1/me/totp/confirm", json={**confirm, "code": remember_code(wrong_code(key, clock))}
                ).status_code
                == 400
            )
            assert (
                api.post(
                    "/api/v1/me/totp/confirm", json={**confirm, "code": remember_code(code(key, clock))}
                ).status_code
                == 200
            )
            api.post("/api/v1/sign-out")
            clock.advance(seconds=30)

            flow = api.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).json()["flow_id"]
            step = f"/api/v1/sign-in/{flow}/second-factor"
            assert (
                api.post(step, json={"method": "totp", "code": remember_code(wrong_code(key, clock))}).status_code
                == 401
            )
            answer = api.post(step, json={"method": "totp", "code": remember_code(code(key, clock))})
            assert answer.status_code == 200
            secrets_seen.append(answer.cookies["twofold_session"])
            clock.advance(seconds=30)
            turn_off = {"password": WRONG_PASSWORD, "code": remember_code(code(key, clock))}
            assert api.request("DELETE", "/api/v1/me/totp", json=turn_off).status_code == 401
            assert (
                api.request(
                    "DELETE",
                    "/api/v1/me/totp",
                    json={"password": PASSWORD, "code": remember_code(wrong_code(key, clock))},
                ).status_code
                == 400
            )

        with httpx.Client(base_url=base) as browser:  # the pages, as forms
            assert browser.post("/sign-in", data={"email": member.email, "password": WRONG_PASSWORD}).status_code == 401
            answer = browser.post("/sign-in", data={"email": member.email, "password": PASSWORD})
            code_page = answer.headers["location"]
            assert browser.post(code_page, data={"code": remember_code(wrong_code(key, clock))}).status_code == 401
            answer = browser.post(code_page, data={"code": remember_code(code(key, clock))})
            assert answer.status_code == 303
            secrets_seen.append(answer.cookies["twofold_session"])
            clock.advance(seconds=30)
            answer = browser.post(
                "/account/security/totp/disable", data={"password": PASSWORD, "code": remember_code(code(key, clock))}
            )
            assert answer.status_code == 303

    # httpx and httpcore are this test's own HTTP client, not Twofold: they log what they receive.
    records = [r for r in everything_logged.records if not r.name.startswith(("httpx", "httpcore"))]
    names = {record.name for record in records}
    assert "uvicorn.access" in names and any(n.startswith("sqlalchemy.engine") for n in names), (
        names
    )  # the net was cast

    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logged = "\n".join(formatter.format(record) for record in records)
    with services.db.reading() as s:
        audited = "\n".join(
            json.dumps({"details": e.details, "user_agent": e.user_agent, "ip": e.ip})
            for e in s.execute(select(AuditEvent)).scalars()
        )

    # A flow id is a bearer handle: uvicorn's access lines name the step without it.
    access = "\n".join(formatter.format(record) for record in records if record.name == "uvicorn.access")
    assert flow not in access and "/api/v1/sign-in/***/second-factor" in access

    for where, text in (("log", logged), ("audit", audited)):
        for secret in secrets_seen:
            assert secret not in text, f"a secret appears in the {where}"
            assert secret.lower() not in text.lower(), f"a secret appears in the {where}"
        for value in codes_seen:
            assert not re.search(rf"(?<![0-9]){value}(?![0-9])", text), f"code {value} appears in the {where}"


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/setup/Zq8_x-Y2", "/setup/***"),
        ("/setup/Zq8_x-Y2/password", "/setup/***/password"),
        ("/api/v1/sign-in/AbC-12_x/second-factor", "/api/v1/sign-in/***/second-factor"),
        ("/sign-in/AbC-12_x/code?return_to=/account", "/sign-in/***/code?return_to=/account"),
        ("/api/v1/sign-in", "/api/v1/sign-in"),
        ("/sign-in?return_to=/account", "/sign-in?return_to=/account"),
    ],
)
def test_access_log_lines_keep_no_set_up_token_or_flow_id(path, logged):
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", path, "1.1", 200),
        None,
    )
    assert RedactTokens().filter(record)
    assert record.getMessage() == f'127.0.0.1:5 - "GET {logged} HTTP/1.1" 200'


def test_the_suite_wide_log_scan_finds_a_token_a_code_and_a_password(secrets_never_logged):
    """tests/support/log_scan.py taps where secrets are made and reads every record: it must catch these."""
    from twofold.crypto.secret_box import random_token

    token = random_token()
    code = otp.totp(otp.new_secret(), 1_000_000)
    log = logging.getLogger("twofold.test")
    log.info("a flow id %s", token)
    log.warning("the code was %s.", code)
    log.error("password was %s", PASSWORD)
    log.info("nothing secret: %s", "job 12 took 1234567 ms")
    leaks = secrets_never_logged.leaks()
    assert len(leaks) == 3, leaks
    assert "token'" in leaks[0] and "'authenticator code'" in leaks[1] and "'password'" in leaks[2]
    assert token not in "\n".join(leaks) and code not in "\n".join(leaks)  # the report masks them
    secrets_never_logged.records.clear()  # the leaks were planted: do not fail this test at teardown
