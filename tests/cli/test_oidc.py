"""``twofold app add --redirect-uri``, ``twofold app rotate-secret`` and ``twofold oidc rotate-key``."""

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
    return lambda *args: runner.invoke(cli, list(args), catch_exceptions=False)


def test_app_add_with_redirect_uris_prints_the_client_id_and_the_secret_once(run, practice, services):
    added = run(
        "app", "add", "--practice", practice.name, "--name", "Patient Records",
        "--redirect-uri", "https://records.riverside.example/cb", "--redirect-uri", "https://records.riverside.example/cb2",
        "--post-logout-redirect-uri", "https://records.riverside.example/", "--role", "provider", "--json",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    app = json.loads(added.output)
    assert app["client_id"] and len(app["client_secret"]) >= 40 and app["public"] is False
    assert app["redirect_uris"] == ["https://records.riverside.example/cb", "https://records.riverside.example/cb2"]
    assert app["allowed_roles"] == ["provider"] and app["url"] is None
    listed = run("app", "list", "--practice", practice.name, "--json")
    assert app["client_secret"] not in listed.output and app["client_id"] in listed.output

    rotated = json.loads(run("app", "rotate-secret", "--practice", practice.name, str(app["id"]), "--json").output)
    assert rotated["client_id"] == app["client_id"] and rotated["client_secret"] != app["client_secret"]
    assert len(events(services, "practice:app:oidc_client_secret_rotated")) == 1

    text = run("app", "add", "--practice", practice.name, "--name", "Phone", "--redirect-uri", "https://m.example/cb",
               "--public")  # fmt: skip
    assert "client_id:" in text.output and "client_secret" not in text.output


def test_bad_redirect_uri_fails_clearly_and_adds_nothing(run, practice):
    failed = run("app", "add", "--practice", practice.name, "--name", "X", "--redirect-uri", "https://x.example/*")
    assert failed.exit_code == 1 and "wildcards" in failed.output
    assert json.loads(run("app", "list", "--practice", practice.name, "--json").output) == []


def test_rotate_secret_of_an_app_without_a_client_fails_clearly(run, practice):
    added = json.loads(
        run("app", "add", "--practice", practice.name, "--name", "Files", "--url", "https://f.example", "--json").output
    )
    failed = run("app", "rotate-secret", "--practice", practice.name, str(added["id"]))
    assert failed.exit_code == 1 and "not an OpenID Connect client" in failed.output


def test_oidc_rotate_key_makes_a_new_signing_key_and_keeps_the_old_one_published(run, services):
    first = services.oidc_keys.ensure()
    rotated = run("oidc", "rotate-key")
    assert rotated.exit_code == 0, rotated.output
    kids = [key["kid"] for key in services.oidc_keys.public_keys()["keys"]]
    assert len(kids) == 2 and first in kids and kids[0] in rotated.output
    assert len(events(services, "oidc:signing_key:rotated")) == 1


def test_app_add_and_change_set_and_remove_the_back_channel_logout_uri(run, practice, services):
    added = run(
        "app", "add", "--practice", practice.name, "--name", "Records", "--redirect-uri", "https://r.example/cb",
        "--backchannel-logout-uri", "https://r.example/backchannel", "--json",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    app = json.loads(added.output)
    assert app["backchannel_logout_uri"] == "https://r.example/backchannel"
    refused = run("app", "change", "--practice", practice.name, str(app["id"]), "--backchannel-logout-uri", "x")
    assert refused.exit_code == 1 and "back-channel logout URI" in refused.output
    removed = run("app", "change", "--practice", practice.name, str(app["id"]), "--no-backchannel-logout-uri", "--json")
    assert removed.exit_code == 0 and json.loads(removed.output)["backchannel_logout_uri"] is None
    both = run(
        "app", "change", "--practice", practice.name, str(app["id"]),
        "--backchannel-logout-uri", "https://r.example/b", "--no-backchannel-logout-uri",
    )  # fmt: skip
    assert both.exit_code == 1 and "not both" in both.output
