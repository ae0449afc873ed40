"""Time, injected: services ask a clock, tests move it instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that moves only when told to; for tests and benchmarks."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 2, 9, 0, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, /, **kwargs: float) -> datetime:
        self._now += delta if delta is not None else timedelta(**kwargs)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment


# -- time zones: times are kept and computed in UTC; people read them in their practice's zone --------


def is_time_zone(name: object) -> bool:
    """Whether ``name`` is an IANA time zone name (``Europe/London``, ``America/Chicago``, ``UTC``)."""
    if not isinstance(name, str) or not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        return False
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The zone ``name`` (IANA); raises ``ZoneInfoNotFoundError`` for an unknown one."""
    return ZoneInfo(name)


def local(moment: datetime, zone_name: str | None) -> datetime:
    """``moment`` as a clock on the wall in ``zone_name`` shows it (UTC when the name is unknown)."""
    return moment.astimezone(zone(zone_name) if zone_name and is_time_zone(zone_name) else UTC)
