"""Request threads and database connections are sized together, by backend."""

import re

import pytest

from twofold.settings import ConfigurationError, Settings


@pytest.mark.parametrize(
    ("overrides", "threads", "pool"),
    [
        ({}, 8, 8),  # default database: SQLite under var/
        ({"database_url": "sqlite:////tmp/twofold.db"}, 8, 8),
        ({"database_url": "postgresql://twofold@db.example/twofold"}, 20, 20),
        ({"database_url": "postgresql://twofold@db.example/twofold", "db_max_connections": 6}, 6, 6),
        (
            {
                "database_url": "postgresql://twofold@db.example/twofold",
                "request_threads": 32,
                "db_max_connections": 10,
            },
            32,
            10,
        ),
        ({"db_pool_size": 30, "db_max_connections": 12}, 8, 12),
        ({"request_threads": 5}, 5, 5),
        ({"db_pool_size": 12}, 8, 12),
        (
            {"database_url": "postgresql://twofold@db.example/twofold", "request_threads": 16, "db_pool_size": 20},
            16,
            20,
        ),
    ],
)
def test_threads_and_pool_follow_the_backend_unless_set(overrides, threads, pool, tmp_path):
    settings = Settings(_env_file=None, var_dir=tmp_path, **overrides)
    assert (settings.request_threads, settings.db_pool_size) == (threads, pool)


def test_thread_and_pool_sizes_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TWOFOLD_REQUEST_THREADS", "3")
    monkeypatch.setenv("TWOFOLD_DB_POOL_SIZE", "4")
    settings = Settings(_env_file=None, var_dir=tmp_path)
    assert (settings.request_threads, settings.db_pool_size) == (3, 4)


@pytest.mark.parametrize(
    ("overrides", "origin"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"port": 9001}, "http://127.0.0.1:9001"),
        ({"host": "0.0.0.0", "port": 8080}, "http://localhost:8080"),  # noqa: S104
        ({"host": "::1"}, "http://[::1]:8000"),
        ({"public_origin": "https://Signin.Example.org/"}, "https://signin.example.org"),
        ({"public_origin": "http://intranet.clinic:8443"}, "http://intranet.clinic:8443"),
        ({"env": "production", "public_origin": "https://signin.example.org"}, "https://signin.example.org"),
    ],
)
def test_the_public_origin_is_the_configured_one_or_the_served_address(overrides, origin, tmp_path):
    assert Settings(_env_file=None, var_dir=tmp_path, **overrides).resolved_public_origin() == origin


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"env": "production"}, "TWOFOLD_PUBLIC_ORIGIN is not set"),
        ({"env": "production", "public_origin": "http://signin.example.org"}, "https:// in production"),
        ({"public_origin": "signin.example.org"}, "must be an address"),
        ({"public_origin": "ftp://signin.example.org"}, "must be an address"),
        ({"public_origin": "https://signin.example.org/twofold"}, "origin only"),
        ({"public_origin": "https://user@signin.example.org"}, "origin only"),
        ({"public_origin": "https://signin.example.org:99999"}, "must be an address"),
    ],
)
def test_a_missing_or_malformed_public_origin_is_a_clear_configuration_error(overrides, message, tmp_path):
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        Settings(_env_file=None, var_dir=tmp_path, **overrides).resolved_public_origin()


def test_the_default_time_zone_is_an_iana_name(tmp_path):
    assert Settings(default_time_zone="America/Chicago").default_time_zone == "America/Chicago"
    for bad in ("Mars/Olympus_Mons", "../../etc/passwd", "", "EST5EDT/../x"):
        with pytest.raises(ValueError, match="time zone"):
            Settings(default_time_zone=bad)
