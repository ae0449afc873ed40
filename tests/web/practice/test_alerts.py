"""Admin alerts over HTTP: the JSON API (choices, the list, dismissing), the Alerts page and the Members
page's "Recent alerts". Role and practice checks for every route are in test_isolation.py."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.support.practice_admin import events
from twofold.audit import AlertKind
from twofold.context import RequestContext
from twofold.core.practice.alerts import KINDS
from twofold.store.models import AlertPreference

DEFAULTS = dict.fromkeys(KINDS, "immediate")


@pytest.fixture
def member(make_user):
    return make_user(role="staff", with_totp=True, email="sam.jones@riverside.example")


@pytest.fixture
def raised(services, member, clock):
    """An alert about ``member``: a backup code used, with 4 left."""
    with services.db.transaction() as s:
        services.audit.alerts.raise_alert(
            s,
            kind=AlertKind.BACKUP_CODE_USED,
            practice_id=member.practice_id,
            subject_id=member.id,
            details={"codes_left": 4},
        )
    return services.alerts.recent(practice_id=member.practice_id)[0]


def choices(services) -> list:
    with services.db.reading() as s:
        return s.execute(select(AlertPreference.user_id, AlertPreference.kind, AlertPreference.delivery)).all()


def test_an_admin_reads_and_changes_their_choices(client, admin, services):
    assert client.get("/api/v1/practice/alerts/preferences").json() == DEFAULTS
    changed = client.put(
        "/api/v1/practice/alerts/preferences", json={"locked_out": "digest", "backup_code_used": "off"}
    )
    assert changed.status_code == 200
    assert changed.json() == {**DEFAULTS, "locked_out": "digest", "backup_code_used": "off"}
    assert client.get("/api/v1/practice/alerts/preferences").json() == changed.json()
    (event,) = events(services, "practice:alerts:preferences_changed")
    assert event.details == {"changed": {"locked_out": "digest", "backup_code_used": "off"}}


@pytest.mark.parametrize(
    "body",
    [
        {"locked_out": "weekly"},
        {"no_such_kind": "off"},
        {"locked_out": 1},
        {"locked_out": None, "two_factor_reset": ["off"]},
        [],
        "off",
    ],
)
def test_bad_choices_are_refused_with_422_and_change_nothing(client, admin, services, body):
    response = client.put("/api/v1/practice/alerts/preferences", json=body)
    assert response.status_code == 422
    assert "error" in response.json()
    assert choices(services) == []


def test_the_list_shows_the_practice_alerts_and_one_is_dismissed_for_everyone(
    client, admin, services, member, raised, clock
):
    (item,) = client.get("/api/v1/practice/alerts").json()["items"]
    assert item["kind"] == "backup_code_used"
    assert item["summary"] == "Used a backup code (4 left)."
    assert item["member"] == {"id": member.id, "name": "Sam.Jones", "email": member.email}
    assert item["at"] == clock.now().isoformat() and item["acknowledged_at"] is None
    done = client.post(f"/api/v1/practice/alerts/{raised.id}/acknowledge")
    assert done.status_code == 200 and done.json() == {"status": "acknowledged"}
    assert client.post(f"/api/v1/practice/alerts/{raised.id}/acknowledge").status_code == 200  # again: no change
    (item,) = client.get("/api/v1/practice/alerts").json()["items"]
    assert item["acknowledged_at"] == clock.now().isoformat()
    (event,) = events(services, "practice:alert:acknowledged")
    assert (event.actor_id, event.subject_id, event.details) == (admin.id, member.id, {"alert": "backup_code_used"})


@pytest.mark.parametrize("alert_id", ["999", "0", "-1", "abc", str(2**40)])
def test_an_unknown_alert_is_a_clear_4xx(client, admin, alert_id):
    response = client.post(f"/api/v1/practice/alerts/{alert_id}/acknowledge")
    assert response.status_code in (404, 422)
    assert response.json()["error"] in ("alert_not_found", "validation_error")


def test_the_alerts_page_saves_every_choice(client, admin, services):
    page = client.get("/admin/alerts")
    assert page.status_code == 200
    assert 'name="locked_out" value="immediate"' in page.text and "3 or fewer left" in page.text
    form = {**DEFAULTS, "two_factor_reset": "digest", "backup_codes_low": "off"}
    saved = client.post("/admin/alerts", data=form, follow_redirects=True)
    assert saved.status_code == 200 and "Alert choices saved." in saved.text
    assert services.alerts.preferences(user_id=admin.id) == form
    assert 'name="two_factor_reset" value="digest"\n      checked' in saved.text


def test_a_bad_choice_on_the_page_is_shown_beside_its_group_and_changes_nothing(client, admin, services):
    refused = client.post("/admin/alerts", data={**DEFAULTS, "locked_out": "hourly"})
    assert refused.status_code == 422
    assert 'id="alerts-error"' in refused.text
    assert "Locked out after too many wrong tries: choose how you want to hear about it." in refused.text
    group = refused.text.split('id="locked_out-group"')[1].split("</fieldset>")[0]
    assert group.count('aria-invalid="true" aria-describedby="alerts-error"') == 3
    assert choices(services) == []


def test_the_members_page_shows_recent_alerts_in_the_practice_zone_and_dismisses_them(
    client, admin, services, member, clock
):
    services.policies.update(
        practice_id=member.practice_id, actor_id=None, changes={"time_zone": "Europe/Berlin"}, context=RequestContext()
    )
    assert "No alerts in the last 7 days." in client.get("/admin/members").text
    with services.db.transaction() as s:
        services.audit.alerts.raise_alert(
            s,
            kind=AlertKind.LOCKED_OUT,
            practice_id=member.practice_id,
            subject_id=member.id,
            details={"retry_after": 300},
        )
    (alert,) = services.alerts.recent(practice_id=member.practice_id)
    page = client.get("/admin/members").text
    panel = page.split('id="alerts"')[1].split("</section>")[0]
    assert (
        f'<a href="/admin/members/{member.id}">Sam.Jones</a>: Locked out after too many wrong tries (for 5 min).'
        in panel
    )
    assert "02 Nov 2026, 10:" in panel and "CET" in panel  # 09:xx UTC is 10:xx in Berlin
    assert f'action="/admin/alerts/{alert.id}/acknowledge"' in panel
    dismissed = client.post(f"/admin/alerts/{alert.id}/acknowledge", follow_redirects=True)
    assert "Alert dismissed for every admin of the practice." in dismissed.text
    panel = dismissed.text.split('id="alerts"')[1].split("</section>")[0]
    assert "dismissed" in panel and "/acknowledge" not in panel
