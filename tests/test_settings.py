"""Request threads and database connections are sized together, by backend."""

import pytest

from twofold.settings import Settings


@pytest.mark.parametrize(
    ("overrides", "threads", "pool"),
    [
        ({}, 8, 8),  # default database: SQLite under var/
        ({"database_url": "sqlite:////tmp/twofold.db"}, 8, 8),
        ({"database_url": "postgresql://twofold@db.example/twofold"}, 32, 32),
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


def test_the_default_time_zone_is_an_iana_name(tmp_path):
    assert Settings(default_time_zone="America/Chicago").default_time_zone == "America/Chicago"
    for bad in ("Mars/Olympus_Mons", "../../etc/passwd", "", "EST5EDT/../x"):
        with pytest.raises(ValueError, match="time zone"):
            Settings(default_time_zone=bad)
