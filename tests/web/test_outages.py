"""When the database or Redis is down, restarting or hanging, every answer is a clear 503
`unavailable` with Retry-After (never a 500), readiness says what is down, and service
comes back by itself. Real PostgreSQL behind a TCP proxy the test controls, and a
redis-server of the test's own (the shared servers are never stopped).
"""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.base import PASSWORD
from tests.support.faults import OwnRedis, TcpProxy
from twofold.throttle import PASSWORD_PER_CLIENT
from twofold.web.app import create_app
from twofold.wiring import build_services


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path / "redis", appendonly=True).start()
    yield server
    server.stop()


@pytest.fixture
def on_redis(settings, clock, notifier):
    """An app whose throttle counters live in ``url``'s Redis."""
    built = []

    def factory(url: str):
        services = build_services(
            settings.model_copy(update={"redis_url": url, "redis_timeout": 1.0}), clock=clock, notifier=notifier
        )
        built.append(services)
        return services

    yield factory
    for services in built:
        services.close()


def assert_unavailable(response, *, naming: str) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"] == "unavailable"
    assert naming in body["message"]
    assert int(response.headers["retry-after"]) >= 1
    assert body["retry_after"] == int(response.headers["retry-after"])
    assert "Traceback" not in response.text


@pytest.mark.redis
def test_with_redis_down_sign_in_answers_503_with_retry_after_and_readiness_names_redis(on_redis, own_redis, make_user):
    member = make_user()
    services = on_redis(own_redis.url)
    with TestClient(create_app(services), base_url="http://127.0.0.1") as client:
        assert client.get("/api/v1/health/ready").json() == {
            "status": "ok",
            "checks": {"database": "ok", "redis": "ok"},
        }
        own_redis.stop()
        body = {"email": member.email, "password": PASSWORD}
        assert_unavailable(client.post("/api/v1/sign-in", json=body), naming="Redis")
        ready = client.get("/api/v1/health/ready")
        assert_unavailable(ready, naming="Redis")
        assert ready.json()["checks"] == {"database": "ok", "redis": "unavailable"}
        assert client.get("/api/v1/health/live").status_code == 200
        page = client.post("/sign-in", data=body)
        assert page.status_code == 503 and "Try again shortly" in page.text and page.headers["retry-after"]

        own_redis.start()  # same port, same files: service comes back without a restart of Twofold
        assert client.post("/api/v1/sign-in", json=body).status_code == 200
        assert client.get("/api/v1/health/ready").status_code == 200


@pytest.mark.redis
def test_throttle_counters_survive_a_redis_crash_and_restart(on_redis, own_redis, make_user):
    member = make_user()
    services = on_redis(own_redis.url)
    wrong = {"email": member.email, "password": "not the password"}
    with TestClient(create_app(services), base_url="http://127.0.0.1") as client:
        for _ in range(PASSWORD_PER_CLIENT.limits[0].max_failures):  # this client's five
            assert client.post("/api/v1/sign-in", json=wrong).status_code == 401
        own_redis.stop()  # SIGKILL: no final save
        own_redis.start()
        answer = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD})
        assert answer.status_code == 429, answer.text


@pytest.mark.redis
def test_a_redis_without_an_append_only_file_is_named_as_a_problem(tmp_path, on_redis, own_redis):
    volatile = OwnRedis(tmp_path / "volatile", appendonly=False).start()
    try:
        assert "appendonly yes" in on_redis(volatile.url).throttle.store.persistence_problem()
        assert on_redis(own_redis.url).throttle.store.persistence_problem() is None
    finally:
        volatile.stop()


# -- PostgreSQL ------------------------------------------------------------------------------------


@pytest.fixture
def proxied_postgres(postgres_database, database_url):
    """The test's PostgreSQL database, reached through a proxy the test can take down or hang."""
    if postgres_database is None:
        pytest.skip("needs PostgreSQL")
    parsed = make_url(postgres_database)
    proxy = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432)).start()
    yield proxy, parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    proxy.stop()


@pytest.fixture
def on_postgres(settings, clock, notifier):
    built = []

    def factory(url: str, **overrides):
        update = {"database_url": url, "db_pool_size": 4, "db_connect_timeout": 1.0, **overrides}
        services = build_services(settings.model_copy(update=update), clock=clock, notifier=notifier)
        built.append(services)
        return services

    yield factory
    for services in built:
        services.close()


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_with_the_database_down_every_answer_is_503_and_service_comes_back(proxied_postgres, on_postgres, make_user):
    proxy, url = proxied_postgres
    member = make_user()
    services = on_postgres(url)
    body = {"email": member.email, "password": PASSWORD}
    with TestClient(create_app(services), base_url="http://127.0.0.1") as client:
        assert client.post("/api/v1/sign-in", json=body).status_code == 200
        proxy.down()
        assert_unavailable(client.post("/api/v1/sign-in", json=body), naming="database")
        assert_unavailable(client.get("/api/v1/me"), naming="database")  # the session lookup
        assert_unavailable(client.get("/api/v1/health"), naming="database")
        ready = client.get("/api/v1/health/ready")
        assert_unavailable(ready, naming="database")
        assert ready.json()["checks"] == {"database": "unavailable"}
        page = client.get("/account/security")
        assert page.status_code == 503 and "Try again shortly" in page.text
        proxy.up()
        assert client.get("/api/v1/me").status_code == 200
        assert client.get("/api/v1/health/ready").status_code == 200


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_database_that_accepts_but_never_answers_gives_503_after_the_connect_timeout(
    proxied_postgres, on_postgres, make_user
):
    proxy, url = proxied_postgres
    member = make_user()
    services = on_postgres(url)
    proxy.hang()
    with TestClient(create_app(services), base_url="http://127.0.0.1") as client:
        started = time.monotonic()
        answer = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD})
        took = time.monotonic() - started
    assert_unavailable(answer, naming="database")
    assert took < 10, took


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_statement_stuck_behind_a_lock_gives_503_after_the_statement_timeout(database_url, on_postgres, make_user):
    member = make_user()
    services = on_postgres(database_url, db_statement_timeout=1.0)
    holder = create_engine(make_url(database_url).set(drivername="postgresql+psycopg"))
    try:
        with holder.connect() as connection, TestClient(create_app(services), base_url="http://127.0.0.1") as client:
            connection.execute(text("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"))  # a migration, a VACUUM FULL
            started = time.monotonic()
            answer = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD})
            took = time.monotonic() - started
            connection.rollback()
    finally:
        holder.dispose()
    assert_unavailable(answer, naming="database")
    assert took < 8, took
