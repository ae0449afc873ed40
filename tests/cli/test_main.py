"""The ``twofold`` command, run as a person runs it: ``python -m twofold`` in a subprocess,
with its var directory and database in a temporary folder.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, inspect, text

ROOT = Path(__file__).resolve().parents[2]
PRACTICE = "Riverside Family Practice"
PASSWORD = "a long and good password"


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("TWOFOLD_")}
    return {
        **keep,
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
        "TWOFOLD_VAR_DIR": str(tmp_path / "var"),
        "TWOFOLD_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'cli.db'}",
    }


@pytest.fixture
def prepared(env):
    """A migrated database with the practice, made in-process (quicker than another subprocess)."""
    from twofold.context import RequestContext
    from twofold.settings import Settings
    from twofold.store.migrate import upgrade
    from twofold.wiring import build_services

    services = build_services(
        Settings(_env_file=None, var_dir=Path(env["TWOFOLD_VAR_DIR"]), database_url=env["TWOFOLD_DATABASE_URL"])
    )
    try:
        upgrade(services.db.engine)
        services.accounts.create_practice(name=PRACTICE, context=RequestContext())
        yield services
    finally:
        services.close()


def twofold(env, *args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "twofold", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or Path(env["TWOFOLD_VAR_DIR"]).parent,
        timeout=60,
    )


def assert_clear_failure(result: subprocess.CompletedProcess, code: int, *phrases: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output
    for phrase in phrases:
        assert phrase.lower() in output.lower(), output


def add_user(env, email: str, *, role: str = "provider", password: str = PASSWORD, practice: str = PRACTICE):
    return twofold(
        env,
        "user",
        "add",
        "--practice",
        practice,
        "--email",
        email,
        "--name",
        "Dr. Lee",
        "--role",
        role,
        "--password-stdin",
        stdin=password + "\n",
    )


def test_db_upgrade_creates_every_table_and_keeps_a_development_secret_key(env):
    result = twofold(env, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    engine = create_engine(env["TWOFOLD_DATABASE_URL"])
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {
        "users",
        "practices",
        "totp_credentials",
        "sign_in_flows",
        "sessions",
        "audit_events",
        "throttle_failures",
    } <= tables
    key_file = Path(env["TWOFOLD_VAR_DIR"], "secret_key")
    first = key_file.read_text()
    assert len(first.strip()) >= 32 and (key_file.stat().st_mode & 0o777) == 0o600
    assert twofold(env, "db", "upgrade").returncode == 0  # idempotent, and the key is kept
    assert key_file.read_text() == first


def test_practice_create_on_a_fresh_database_then_a_duplicate_is_a_clear_error(env):
    result = twofold(env, "practice", "create", PRACTICE)
    assert result.returncode == 0, result.stderr
    assert PRACTICE in result.stdout
    assert_clear_failure(twofold(env, "practice", "create", PRACTICE), 1, "already exists")


def test_user_add_reads_the_password_from_stdin_and_the_account_signs_in(env, prepared):
    from twofold.context import RequestContext

    result = add_user(env, "Dr.Lee@Riverside.example")
    assert result.returncode == 0, result.stderr
    assert "dr.lee@riverside.example" in result.stdout and PASSWORD not in result.stdout + result.stderr
    signed_in = prepared.sign_in.start_sign_in(
        email="dr.lee@riverside.example", password=PASSWORD, context=RequestContext()
    )
    assert signed_in.status == "signed_in"
    with prepared.db.reading() as s:
        stored = s.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_a_duplicate_email_is_a_clear_error(env, prepared):
    from twofold.context import RequestContext

    practice = prepared.accounts.find_practice(PRACTICE)
    prepared.accounts.add_member(
        practice_id=practice.id,
        email="dr.lee@riverside.example",
        name="Dr. Lee",
        role="provider",
        password=PASSWORD,
        context=RequestContext(),
    )
    assert_clear_failure(add_user(env, "DR.LEE@riverside.example"), 1, "already exists")


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"practice": "No Such Practice"}, "No practice named"),
        ({"role": "superuser"}, "role must be one of"),
        ({"password": "short"}, "at least 12 characters"),
    ],
    ids=["unknown-practice", "unknown-role", "short-password"],
)
def test_bad_user_details_are_clear_errors(env, prepared, kwargs, phrase):
    assert_clear_failure(add_user(env, "dr.lee@riverside.example", **kwargs), 1, phrase)


def test_user_add_without_password_stdin_exits_2_and_says_why(env):
    result = twofold(
        env,
        "user",
        "add",
        "--practice",
        PRACTICE,
        "--email",
        "a@riverside.example",
        "--name",
        "A",
        "--role",
        "staff",
        stdin=PASSWORD + "\n",
    )
    assert_clear_failure(result, 2, "--password-stdin")


def test_user_add_with_an_empty_stdin_exits_2(env):
    result = twofold(
        env,
        "user",
        "add",
        "--practice",
        PRACTICE,
        "--email",
        "a@riverside.example",
        "--name",
        "A",
        "--role",
        "staff",
        "--password-stdin",
        stdin="",
    )
    assert_clear_failure(result, 2, "no password")


@pytest.mark.parametrize("command", [["db", "upgrade"], ["serve", "--port", "1"]], ids=["db-upgrade", "serve"])
def test_production_without_a_secret_key_is_a_clear_start_up_error(env, command):
    env = {**env, "TWOFOLD_ENV": "production"}
    assert_clear_failure(twofold(env, *command), 1, "TWOFOLD_SECRET_KEY is not set")
    assert not Path(env["TWOFOLD_VAR_DIR"], "secret_key").exists()


def test_a_short_secret_key_is_a_clear_start_up_error(env):
    env = {**env, "TWOFOLD_ENV": "production", "TWOFOLD_SECRET_KEY": "too-short"}
    assert_clear_failure(twofold(env, "db", "upgrade"), 1, "at least 32 characters")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_on_a_fresh_machine_creates_the_database_seeds_the_demo_and_signs_in(env, tmp_path):
    port = free_port()
    var = Path(env["TWOFOLD_VAR_DIR"])
    env = {k: v for k, v in env.items() if k != "TWOFOLD_DATABASE_URL"}  # the default: a SQLite file under var/
    server = subprocess.Popen(
        [sys.executable, "-m", "twofold", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        logins: dict[str, tuple[str, str]] = {}
        deadline = time.monotonic() + 60
        while len(logins) < 3 and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            lines.append(line)
            cells = re.findall(r"[^\s│┃|]+", line)
            if len(cells) == 3 and cells[0] in ("admin", "provider", "staff") and "@" in cells[1]:
                logins[cells[0]] = (cells[1], cells[2])
        output = "".join(lines)
        assert f"http://127.0.0.1:{port}" in output, output
        assert set(logins) == {"admin", "provider", "staff"}, output
        assert (var / "twofold.db").exists() and (var / "demo-logins.txt").exists()

        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:  # poll until it answers, bounded
            try:
                httpx.get(f"{base}/sign-in", timeout=2)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the server did not answer:\n" + output + server.stdout.read()) from None
                time.sleep(0.1)
        email, password = logins["admin"]
        response = httpx.post(f"{base}/api/v1/sign-in", json={"email": email, "password": password}, timeout=10)
        assert response.status_code == 200 and response.json() == {"status": "signed_in"}
        me = httpx.get(
            f"{base}/api/v1/me", cookies={"twofold_session": response.cookies["twofold_session"]}, timeout=10
        )
        assert me.json()["role"] == "admin" and me.json()["practice"]["name"] == PRACTICE
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
        if server.stdout:
            server.stdout.close()
    assert "Traceback" not in "".join(lines)


def test_production_without_smtp_is_a_clear_start_up_error_unless_the_outbox_is_chosen(env):
    env = {**env, "TWOFOLD_ENV": "production", "TWOFOLD_SECRET_KEY": "k" * 40}
    assert_clear_failure(twofold(env, "db", "upgrade"), 1, "TWOFOLD_SMTP_HOST is not set", "TWOFOLD_MAIL_OUTBOX=1")
    chosen = twofold(
        {**env, "TWOFOLD_MAIL_OUTBOX": "1", "TWOFOLD_PUBLIC_ORIGIN": "https://signin.example.org"}, "db", "upgrade"
    )
    assert chosen.returncode == 0, chosen.stdout + chosen.stderr


@pytest.mark.parametrize("command", [["db", "upgrade"], ["serve", "--port", "1"]], ids=["db-upgrade", "serve"])
def test_production_without_a_public_origin_is_a_clear_start_up_error(env, command):
    env = {**env, "TWOFOLD_ENV": "production", "TWOFOLD_SECRET_KEY": "k" * 40, "TWOFOLD_MAIL_OUTBOX": "1"}
    assert_clear_failure(twofold(env, *command), 1, "TWOFOLD_PUBLIC_ORIGIN is not set")


def test_files_twofold_creates_are_the_owners_alone(env):
    result = twofold(env, "db", "upgrade")
    assert result.returncode == 0, result.stdout + result.stderr
    var = Path(env["TWOFOLD_VAR_DIR"])
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    assert stat.S_IMODE((var / "cli.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((var / "secret_key").stat().st_mode) == 0o600
