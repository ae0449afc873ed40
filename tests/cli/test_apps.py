"""``twofold app add|change|list|remove``: the same apps as the API, audited as the CLI."""

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
        "backchannel_logout_uri": None,
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


def test_app_change_changes_only_what_is_given_and_is_audited(run, practice, services):
    added = json.loads(
        run(
            "app", "add", "--practice", practice.name, "--name", "Imaging portal",
            "--url", "https://imaging.riverside.example", "--bypass-path", "/health", "--reauth-minutes", "10", "--json",
        ).output
    )  # fmt: skip
    changed = run(
        "app", "change", "--practice", practice.name, str(added["id"]),
        "--name", "Imaging", "--role", "provider", "--no-bypass-paths", "--no-reauth", "--disable", "--json",
    )  # fmt: skip
    assert changed.exit_code == 0, changed.output
    assert json.loads(changed.output) == {
        **added,
        "name": "Imaging",
        "allowed_roles": ["provider"],
        "bypass_paths": [],
        "reauth_minutes": None,
        "enabled": False,
    }
    [event] = events(services, "practice:app:changed")
    assert event.details["changed"] == ["allowed_roles", "bypass_paths", "enabled", "name", "reauth_minutes"]
    assert event.user_agent == "twofold-cli"
    again = run("app", "change", "--practice", practice.name, str(added["id"]), "--enable")
    assert again.exit_code == 0 and "enabled" in again.output
    assert services.apps.get_app(practice_id=practice.id, app_id=added["id"]).enabled


def test_app_change_replaces_an_oidc_apps_redirect_uris(run, practice, services):
    added = json.loads(
        run(
            "app", "add", "--practice", practice.name, "--name", "Records", "--redirect-uri", "https://r.example/cb",
            "--post-logout-redirect-uri", "https://r.example/", "--json",
        ).output
    )  # fmt: skip
    changed = run(
        "app", "change", "--practice", practice.name, str(added["id"]), "--redirect-uri", "https://r.example/new",
        "--redirect-uri", "https://r.example/other", "--no-post-logout-redirect-uris", "--json",
    )  # fmt: skip
    assert changed.exit_code == 0, changed.output
    app = json.loads(changed.output)
    assert app["redirect_uris"] == ["https://r.example/new", "https://r.example/other"]
    assert app["post_logout_redirect_uris"] == [] and app["client_id"] == added["client_id"]
    assert "client_secret" not in app
    [event] = events(services, "practice:app:oidc_client_changed")
    assert event.details["changes"]["redirect_uris"] == [["https://r.example/cb"], app["redirect_uris"]]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ([], "Nothing to change"),
        (["--redirect-uri", "https://r.example/*"], "wildcards"),
        (["--name", "Renamed", "--redirect-uri", "http://r.example/cb"], "https://"),  # nothing written
        (["--name", "Renamed", "--role", "root"], "Allowed roles"),
        (["--bypass-path", "/health", "--no-bypass-paths"], "not both"),
        (["--reauth-minutes", "0"], "minutes"),
    ],
)
def test_app_change_refuses_bad_input_and_changes_nothing(run, practice, services, extra, says):
    added = json.loads(
        run(
            "app", "add", "--practice", practice.name, "--name", "Records", "--redirect-uri", "https://r.example/cb",
            "--json",
        ).output
    )  # fmt: skip
    result = run("app", "change", "--practice", practice.name, str(added["id"]), *extra)
    assert result.exit_code != 0 and says.lower() in result.output.lower(), result.output
    assert "Traceback" not in result.output
    after = json.loads(run("app", "list", "--practice", practice.name, "--json").output)
    assert after == [{k: v for k, v in added.items() if k != "client_secret"}]
    assert events(services, "practice:app:changed") == [] and events(services, "practice:app:oidc_client_changed") == []


def test_app_change_of_redirect_uris_on_a_proxied_app_says_it_is_no_client(run, practice):
    added = json.loads(
        run("app", "add", "--practice", practice.name, "--name", "Files", "--url", "https://f.example", "--json").output
    )
    result = run(
        "app", "change", "--practice", practice.name, str(added["id"]), "--redirect-uri", "https://f.example/cb"
    )
    assert result.exit_code == 1 and "not an OpenID Connect client" in result.output


def test_names_with_brackets_are_printed_as_written_never_read_as_styling(run, practice):
    # Rich reads "[/]" as a closing tag: unescaped, it would end the command with a traceback.
    added = run("app", "add", "--practice", practice.name, "--name", "[/] Lab [red]", "--url", "https://lab.example")
    assert added.exit_code == 0 and "[/] Lab [red]" in added.output
    listed = run("app", "list", "--practice", practice.name)
    assert listed.exit_code == 0 and "[/]" in listed.output and "[red]" in listed.output, listed.output  # wrapped
    unknown = run("app", "list", "--practice", "[/] Nowhere")
    assert unknown.exit_code == 1 and "No practice named '[/] Nowhere'" in unknown.output
    assert "Traceback" not in listed.output + unknown.output
