"""The ``run`` fixture: ``twofold ...`` in-process against the test's database and SMTP server."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.conftest import SECRET_KEY
from twofold.cli.main import app as cli


@pytest.fixture
def run(settings, mailbox, monkeypatch):
    """Run ``twofold ...`` against the test's database, mailing to the test's SMTP server."""
    for name, value in {
        "TWOFOLD_DATABASE_URL": settings.database_url,
        "TWOFOLD_SECRET_KEY": SECRET_KEY,
        "TWOFOLD_VAR_DIR": str(settings.var_dir),
        "TWOFOLD_SMTP_HOST": mailbox.host,
        "TWOFOLD_SMTP_PORT": str(mailbox.port),
        "TWOFOLD_PUBLIC_ORIGIN": "https://signin.example.org",
    }.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke
