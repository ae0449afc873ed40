"""The 500 handler: a clear JSON error for the client, and a log line that keeps no bearer token.

The faults are real: the database loses a table between two requests, over real HTTP, so
uvicorn's own error records are captured with the handler's.
"""

from __future__ import annotations

import httpx
from sqlalchemy import text

from tests.support.live import live_server
from tests.support.practice_admin import setup_path
from twofold.context import RequestContext


def test_a_failing_sign_in_step_or_set_up_page_logs_neither_flow_id_nor_token(
    app, services, make_user, clock, mailbox, secrets_never_logged
):
    admin = make_user(role="admin", with_totp=True)
    newcomer = make_user(email="new.nurse@riverside.example")
    services.setup.send_link(
        practice_id=admin.practice_id,
        actor_id=admin.id,
        member_id=newcomer.id,
        context=RequestContext(),
        link_base="https://signin.example.org",
    )
    setup = setup_path(mailbox.wait_for(1, to=newcomer.email)[-1])
    token = setup.rsplit("/", 1)[-1]

    with live_server(app) as base, httpx.Client(base_url=base) as browser:
        flow = browser.post("/api/v1/sign-in", json={"email": admin.email, "password": admin.password}).json()[
            "flow_id"
        ]
        with services.db.transaction() as s:  # the database breaks under the running server
            s.execute(text("ALTER TABLE sign_in_flows RENAME TO sign_in_flows_gone"))
            s.execute(text("ALTER TABLE setup_links RENAME TO setup_links_gone"))
        step = browser.post(f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": admin.code(clock)})
        with httpx.Client(base_url=base) as another:  # uvicorn closes a connection whose request raised
            page = another.get(setup)
        with httpx.Client(base_url=base) as another:
            code_page = another.get(f"/sign-in/{flow}/code")

    for answer in (step, page, code_page):
        # A vanished table is a database error: 503 "unavailable" (an outage) or 500, never with the handle.
        assert answer.status_code in (500, 503)
        if answer.headers["content-type"].startswith("application/json"):
            assert answer.json()["error"] == ("internal_error" if answer.status_code == 500 else "unavailable")
        assert "Traceback" not in answer.text and flow not in answer.text and token not in answer.text
    lines = [r.getMessage() for r in secrets_never_logged.records if r.name == "twofold.web"]
    logged = {
        step: "unexpected error on POST /api/v1/sign-in/***/second-factor: OperationalError",
        page: "unexpected error on GET /setup/***: OperationalError",
        code_page: "unexpected error on GET /sign-in/***/code: OperationalError",
    }
    assert any(answer.status_code == 500 for answer in logged)  # the 500 handler's own line is checked
    for answer, line in logged.items():
        if answer.status_code == 500:  # a 503 (an outage) logs its own one-line notice instead
            assert line in lines
    # Every record (the handler's and uvicorn's, with their tracebacks) is free of both, and of
    # any other secret made here (the autouse scan fails the test otherwise; said out loud here).
    assert secrets_never_logged.leaks() == []
