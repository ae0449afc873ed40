"""``twofold workstation list|rename|unmark``: the same workstations as the admin pages, audited as the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.conftest import SECRET_KEY
from tests.support.practice_admin import events, user_row
from twofold.cli.main import app as cli
from twofold.context import RequestContext


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


def test_workstation_list_rename_and_unmark(run, practice, services, make_user):
    admin = make_user(role="admin")
    marked = services.workstations.mark(
        admin=user_row(services, admin.id), name="Front desk 1", context=RequestContext()
    )
    listed = run("workstation", "list", "--practice", practice.name, "--json")
    assert listed.exit_code == 0, listed.output
    (item,) = json.loads(listed.output)
    assert item["id"] == marked.view.id and item["name"] == "Front desk 1"
    renamed = run("workstation", "rename", "--practice", practice.name, str(item["id"]), "--name", "Reception")
    assert renamed.exit_code == 0 and "Reception" in renamed.output
    assert run("workstation", "unmark", "--practice", practice.name, str(item["id"])).exit_code == 0
    assert json.loads(run("workstation", "list", "--practice", practice.name, "--json").output) == []
    unmarked = events(services, "practice:workstation:unmarked")
    assert unmarked[0].actor_id is None and unmarked[0].user_agent == "twofold-cli"


@pytest.mark.parametrize(
    "args",
    [
        ("unmark", "--practice", "Riverside Family Practice", "999"),
        ("unmark", "--practice", "No Such Practice", "1"),
        ("rename", "--practice", "Riverside Family Practice", "999", "--name", "Desk"),
    ],
)
def test_bad_input_is_a_clear_error_that_changes_nothing(run, practice, services, args):
    result = run("workstation", *args)
    assert result.exit_code != 0 and "error:" in result.output and "Traceback" not in result.output
    assert not [e for e in events(services) if e.event.startswith("practice:workstation")]


def test_a_bad_name_is_refused(run, practice, services, make_user):
    admin = make_user(role="admin")
    marked = services.workstations.mark(admin=user_row(services, admin.id), name="Desk", context=RequestContext())
    result = run("workstation", "rename", "--practice", practice.name, str(marked.view.id), "--name", " ")
    assert result.exit_code == 1 and "Name: enter a name" in result.output
    assert not events(services, "practice:workstation:renamed")
