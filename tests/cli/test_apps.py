"""``twofold app add|list|remove``: the same apps as the API, audited as the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.conftest import SECRET_KEY
from tests.support.practice_admin import events
from twofold.cli.main import app as cli


@pytest.fixture
def run(settings, monkeypatch):
    for name, value in {
        "TWOFOLD_DATABASE_URL": settings.database_url,
        "TWOFOLD_SECRET_KEY": SECRET_KEY,
        "TWOFOLD_VAR_DIR": str(settings.var_dir),
        "TWOFOLD_MAIL_OUTBOX": "1",
    }.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_app_add_list_and_remove(run, practice, services):
    added = run(
        "app", "add", "--practice", practice.name, "--name", "Imaging portal",
        "--url", "https://imaging.riverside.example", "--role", "provider", "--role", "admin",
        "--bypass-path", "/health", "--reauth-minutes", "10", "--json",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    app = json.loads(added.output)
    assert app == {
        "id": app["id"],
        "name": "Imaging portal",
        "url": "https://imaging.riverside.example",
        "allowed_roles": ["admin", "provider"],
        "bypass_paths": ["/health"],
        "reauth_minutes": 10,
        "enabled": True,
        "client_id": None,
        "public": None,
        "redirect_uris": [],
        "post_logout_redirect_uris": [],
    }
    assert json.loads(run("app", "list", "--practice", practice.name, "--json").output) == [app]
    table = run("app", "list", "--practice", practice.name)
    assert "https://imaging.riverside.example" in table.output
    [event] = events(services, "practice:app:added")
    assert event.actor_id is None and event.user_agent == "twofold-cli"

    removed = run("app", "remove", "--practice", practice.name, str(app["id"]))
    assert removed.exit_code == 0 and f"Removed app {app['id']}" in removed.output
    assert json.loads(run("app", "list", "--practice", practice.name, "--json").output) == []
    assert len(events(services, "practice:app:removed")) == 1


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["app", "add", "--practice", "Riverside Family Practice", "--name", "No address"], 1, "Give the app's URL"),
        (["app", "add", "--practice", "Riverside Family Practice", "--name", "x", "--url", "nope"], 1, "http or https"),
        (["app", "add", "--practice", "Riverside Family Practice", "--name", "x", "--url", "https://a.example",
          "--role", "root"], 1, "Allowed roles"),
        (["app", "add", "--practice", "Nowhere", "--name", "x", "--url", "https://a.example"], 1, "No practice"),
        (["app", "remove", "--practice", "Riverside Family Practice", "12345"], 1, "no such app"),
        (["app", "remove", "--practice", "Riverside Family Practice", "0"], 2, "ID"),
    ],
)  # fmt: skip
def test_app_commands_refuse_bad_input_clearly(run, practice, services, args, code, says):
    result = run(*args)
    assert result.exit_code == code, result.output
    assert says.lower() in result.output.lower()
    assert "Traceback" not in result.output
    assert services.apps.list_apps(practice_id=practice.id) == []
