"""The suite's root: registers the shared fixtures (tests/support/fixtures.py and the
practice-admin fixtures), tags every test with the optional parts it uses, and ends each
run with a summary of which optional parts ran and which were skipped, and why.

PostgreSQL and Redis are used when they answer on their default local ports, or where
TWOFOLD_TEST_POSTGRES_URL / TWOFOLD_TEST_REDIS_URL say (an empty value leaves one out).
Set TWOFOLD_TEST_REQUIRE_ALL=1 (CI does) to turn every "tool or service missing" skip
into a failure, so CI cannot pass by skipping.

The constants and helpers below are re-exported for the test modules that import them
from here; new code imports them from tests.support.base.
"""

from __future__ import annotations

from hypothesis import settings as hypothesis_settings

from tests.support.base import (  # noqa: F401 - re-exported
    PASSWORD,
    POSTGRES_URL,
    REDIS_URL,
    REQUIRE_ALL,
    SECRET_KEY,
    Member,
    backends,
    require_tool,
    sign_in,
    skip_or_fail,
)
from tests.support.optional import OPTIONAL

pytest_plugins = ["tests.support.fixtures", "tests.support.practice_admin", "tests.support.log_scan"]


def pytest_report_header(config) -> str:
    return OPTIONAL.header()


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        OPTIONAL.tag(item)


def pytest_runtest_logreport(report) -> None:
    OPTIONAL.count(report)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: the controller prints the summary
        return
    terminalreporter.section("optional parts")
    for line in OPTIONAL.summary():
        terminalreporter.write_line(line)


# Property tests check what comes out, never how fast: a run on a loaded machine must not fail
# on Hypothesis's per-example time limit.
hypothesis_settings.register_profile("twofold", deadline=None)
hypothesis_settings.load_profile("twofold")
