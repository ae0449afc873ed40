"""``twofold serve`` hands uvicorn import strings (the CLI does not import the web package):
they must name what the web package really serves."""

from __future__ import annotations

import os

import pytest
import uvicorn
from typer.testing import CliRunner
from uvicorn.importer import import_from_string

from tests.support.base import SECRET_KEY
from tests.support.faults import OwnRedis
from twofold.cli import serve
from twofold.cli.main import app as cli
from twofold.settings import Settings
from twofold.web import app, server


def test_serve_names_the_web_apps_factory_and_http_protocol():
    assert import_from_string(serve.APP_FACTORY) is app.create_app_from_env
    assert import_from_string(serve.HTTP_PROTOCOL) is server.TcpNoDelayHTTPProtocol
    assert serve.HTTP_PROTOCOL == server.HTTP_PROTOCOL


@pytest.fixture
def serve_in_process(settings, monkeypatch):
    """``twofold serve`` run in this process up to the point it hands over to uvicorn, whose
    arguments and the environment its workers would inherit are captured instead."""
    written = ["MALLOC_ARENA_MAX", "TWOFOLD_HOST", "TWOFOLD_PORT"]  # serve sets them: put back afterwards
    for name in {*written, *(name for name in os.environ if name.startswith("TWOFOLD_"))}:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    for name, value in {
        "TWOFOLD_DATABASE_URL": settings.database_url,
        "TWOFOLD_SECRET_KEY": SECRET_KEY,
        "TWOFOLD_VAR_DIR": str(settings.var_dir),
    }.items():
        monkeypatch.setenv(name, value)
    handed_over: dict = {}

    def fake_run(target, **kwargs):
        handed_over.update(kwargs, target=target, environ=dict(os.environ))

    monkeypatch.setattr(uvicorn, "run", fake_run)

    def invoke(*args: str, **env: str):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        result = CliRunner().invoke(cli, ["serve", "--no-demo", *args])
        return result, handed_over

    return invoke


def test_workers_get_bounded_malloc_arenas_and_the_served_address(serve_in_process):
    result, handed_over = serve_in_process("--port", "8123", "--workers", "2")
    assert result.exit_code == 0, result.output
    environ = handed_over["environ"]
    assert environ["MALLOC_ARENA_MAX"] == "2"
    assert (environ["TWOFOLD_HOST"], environ["TWOFOLD_PORT"]) == ("127.0.0.1", "8123")
    # What a worker's security emails link to: the address it really serves.
    assert Settings(_env_file=None).resolved_public_origin() == "http://127.0.0.1:8123"
    assert handed_over["workers"] == 2 and handed_over["timeout_keep_alive"] == 5


def test_an_operators_malloc_setting_and_keep_alive_are_kept(serve_in_process):
    result, handed_over = serve_in_process(MALLOC_ARENA_MAX="4", TWOFOLD_HTTP_KEEPALIVE_TIMEOUT="20")
    assert result.exit_code == 0, result.output
    assert handed_over["environ"]["MALLOC_ARENA_MAX"] == "4"
    assert handed_over["timeout_keep_alive"] == 20


@pytest.mark.redis
def test_production_refuses_a_redis_that_forgets_the_throttle_counters(serve_in_process, tmp_path):
    volatile = OwnRedis(tmp_path / "redis", appendonly=False).start()
    try:
        production = {
            "TWOFOLD_ENV": "production",
            "TWOFOLD_PUBLIC_ORIGIN": "https://signin.example.org",
            "TWOFOLD_MAIL_OUTBOX": "1",
            "TWOFOLD_REDIS_URL": volatile.url,
        }
        result, handed_over = serve_in_process(**production)
        assert result.exit_code == 1 and not handed_over
        assert "appendonly yes" in result.output and "Traceback" not in result.output
        result, handed_over = serve_in_process(**{**production, "TWOFOLD_ENV": "development"})
        assert result.exit_code == 0 and "warning" in result.output and "appendonly yes" in result.output
    finally:
        volatile.stop()


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_serve_warns_when_its_workers_could_exhaust_postgresql(serve_in_process):
    result, _ = serve_in_process("--workers", "8", TWOFOLD_DB_MAX_CONNECTIONS="20")
    assert result.exit_code == 0, result.output
    assert "8 process(es) x 20 database connections = 160" in " ".join(result.output.split())
    assert "TWOFOLD_DB_MAX_CONNECTIONS" in result.output
    result, _ = serve_in_process("--workers", "4")  # the default budget fits PostgreSQL's default 100
    assert "max_connections" not in result.output, result.output
