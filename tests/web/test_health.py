"""GET /api/v1/health: one primary-key read; 200 when the database serves, 503 when not."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from tests.conftest import SECRET_KEY, backends
from twofold.settings import Settings
from twofold.store.models import AuditChainHead, AuditEvent
from twofold.web.app import create_app
from twofold.wiring import build_services


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def test_health_is_ok_without_a_session_and_writes_nothing(client, services):
    with services.db.reading() as s:
        before = s.scalar(select(func.count()).select_from(AuditEvent))
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "set-cookie" not in response.headers
    with services.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_health_is_503_when_the_database_is_not_migrated(client, services):
    with services.db.transaction() as s:
        s.execute(delete(AuditChainHead))
    response = client.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert "twofold db upgrade" in response.json()["message"]


def test_health_is_503_when_the_database_does_not_answer(clock, notifier, tmp_path):
    garbage = tmp_path / "not-a-database.db"
    garbage.write_bytes(b"this is not an SQLite file" * 100)
    broken = Settings(
        _env_file=None, var_dir=tmp_path / "var", database_url=f"sqlite:///{garbage}", secret_key=SECRET_KEY
    )
    services = build_services(broken, clock=clock, notifier=notifier)
    try:
        with TestClient(create_app(services), base_url="http://127.0.0.1") as client:
            response = client.get("/api/v1/health")
        assert response.status_code == 503
        assert response.json() == {
            "error": "unavailable",
            "message": "The service cannot reach its database. Try again shortly.",
            "retry_after": 5,
        }
        assert response.headers["retry-after"] == "5"
    finally:
        services.close()


def test_health_is_documented_in_openapi(client):
    operation = client.get("/api/openapi.json").json()["paths"]["/api/v1/health"]["get"]
    assert set(operation["responses"]) >= {"200", "503"}
