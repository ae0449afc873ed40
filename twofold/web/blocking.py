"""Where an async route runs the blocking use-case code it calls.

On SQLite the database is a library in this process: a statement is a function
call of some microseconds and writers take turns on one file anyway. A hop to
AnyIO's thread pool and back costs more than that (about 200 µs of CPU per
request here, with two hand-offs of the GIL, see benchmarks/http_code_step.py),
and a thread holding SQLite's write turn can lose the GIL to its siblings while
every other writer waits for it. So on SQLite the routes that do only database
work (no argon2, no network) run it on the event loop. On PostgreSQL every
statement is a network round trip, and the work goes to the thread pool as a
plain ``def`` route would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from twofold.wiring import Services

T = TypeVar("T")


async def database_work(services: Services, work: Callable[..., T], /, *args, **kwargs) -> T:
    """``work(*args, **kwargs)``: in place on SQLite, in the thread pool otherwise."""
    if services.db.is_sqlite:
        return work(*args, **kwargs)
    return await run_in_threadpool(work, *args, **kwargs)
