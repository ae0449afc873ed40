"""Statements of the hot paths, compiled once per dialect and run on the driver's cursor.

``Connection.execute()`` spends about 25 µs per statement here before the driver
sees it (statement cache lookup, execution context, events, result set-up): on
the sign-in code step, which runs ten statements, that was more than SQLite's own
work (see benchmarks/http_code_step.py). ``Prepared`` keeps SQLAlchemy as the
author of the SQL, the same Core statement compiled by the connection's dialect
with each column type's conversions, and skips only that per-call machinery. It
runs inside the caller's transaction: ``session.connection()`` begins it as any
other statement would.

Outside a session, ``Database.quick_reads()`` hands out a ``QuickReads``: a pooled driver
connection on which each prepared SELECT is its own statement (no ORM session, no transaction
set up around them on SQLite), for the checks a proxy asks before every request.

Supported: plain bound parameters (no ``expanding`` IN lists), INSERT and UPDATE
whose columns are the keys of the parameters given, and SELECTs of columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement, Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    order: tuple[str, ...] | None  # parameter names in placeholder order; None for a named paramstyle
    processors: tuple[tuple[str, Any], ...]  # (name, bind processor) where the type converts
    fixed: tuple[tuple[str, Any], ...]  # values bound in the statement itself (a literal 1, say)
    results: tuple[Any, ...] | None  # one result processor (or None) per selected column; None: none converts


@dataclass(frozen=True, slots=True)
class QuickReads:
    """A pooled driver connection and its dialect, for prepared reads without a session."""

    dialect: Dialect
    driver: Any  # the DBAPI connection


class Prepared:
    """One Core statement; ``execute(session, params)`` runs it in the session's transaction.

    ``execute`` also takes a ``QuickReads`` in place of the session (SELECTs only).
    """

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._plans: dict[tuple[str, tuple[str, ...]], _Plan] = {}

    def execute(self, session: Session | QuickReads, params: Mapping[str, Any] | None = None) -> PreparedResult:
        if isinstance(session, QuickReads):
            if not isinstance(self.statement, Select):
                raise ValueError("QuickReads run SELECTs only")
            dialect, driver = session.dialect, session.driver
        else:
            if session.autoflush:
                session.flush()  # as Session.execute() would: the statement sees the ORM's pending changes
            dialect, driver = _driver(session)
        params = params or {}
        key = (dialect.name, tuple(params))
        plan = self._plans.get(key) or self._plan(dialect, key)
        values = dict(plan.fixed)
        values.update(params)
        for name, process in plan.processors:
            values[name] = process(values[name])
        cursor = driver.cursor()
        if plan.order is None:
            cursor.execute(plan.sql, values)
        else:
            cursor.execute(plan.sql, tuple(values[name] for name in plan.order))
        return PreparedResult(cursor, plan.results)

    def _plan(self, dialect: Dialect, key: tuple[str, tuple[str, ...]]) -> _Plan:
        column_keys = list(key[1]) if isinstance(self.statement, UpdateBase) else None
        # A Core statement compiles to an SQLCompiler (compile() is typed as the base Compiled).
        compiled = cast(SQLCompiler, self.statement.compile(dialect=dialect, column_keys=column_keys))
        if getattr(compiled, "escaped_bind_names", None) or getattr(compiled, "literal_execute_params", None):
            raise ValueError("Prepared supports plain bound parameters only")
        processors, fixed = [], []
        for name, bind in compiled.binds.items():
            if bind.expanding:
                raise ValueError("Prepared does not expand IN lists")
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((name, process))
            if not bind.required and name not in key[1]:
                fixed.append((name, bind.effective_value))
        results = None
        if isinstance(self.statement, Select):
            results = tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in self.statement.selected_columns
            )
            if not any(results):
                results = None
        order = None
        if compiled.positional:
            if compiled.positiontup is None:
                raise RuntimeError("a positional compile without its parameter order")
            order = tuple(compiled.positiontup)
        plan = _Plan(
            sql=compiled.string,
            order=order,
            processors=tuple(processors),
            fixed=tuple(fixed),
            results=results,
        )
        self._plans[key] = plan
        return plan


_DRIVER = "twofold.prepared.driver"  # session.info key: (transaction, dialect, driver connection)


def _driver(session: Session) -> tuple[Dialect, Any]:
    """The dialect and the driver's connection of the session's transaction, begun if need be.

    Looked up once per transaction: ``session.connection()`` walks a dozen calls
    each time, and a code-step sign-in runs ten statements.
    """
    transaction = session.get_transaction()
    known = session.info.get(_DRIVER)
    if transaction is None or known is None or known[0] is not transaction:
        connection = session.connection()
        known = (session.get_transaction(), connection.dialect, connection.connection.driver_connection)
        session.info[_DRIVER] = known
    return known[1], known[2]


class PreparedResult:
    """What a ``Prepared`` statement gave: ``rowcount`` of a change, or the rows of a SELECT as tuples."""

    __slots__ = ("_cursor", "_results")

    def __init__(self, cursor, results: tuple[Any, ...] | None) -> None:
        self._cursor = cursor
        self._results = results

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def _convert(self, row: tuple) -> tuple:
        if self._results is None:
            return tuple(row)
        return tuple(
            value if process is None else process(value) for process, value in zip(self._results, row, strict=False)
        )

    def one_or_none(self) -> tuple | None:
        rows = self._cursor.fetchmany(2)
        if len(rows) > 1:
            raise ValueError("more than one row where at most one was expected")
        return self._convert(rows[0]) if rows else None

    def all(self) -> list[tuple]:
        return [self._convert(row) for row in self._cursor.fetchall()]

    def scalars(self) -> list[Any]:
        return [row[0] for row in self.all()]


def as_record(table: Table, values: tuple) -> SimpleNamespace:
    """A row of ``table`` (its columns in order) as a plain attribute record, such as ``flow.state``.

    For the hot paths that read with ``Prepared`` and need no ORM object: loading
    one costs more than the statement.
    """
    keys = _KEYS.get(table)
    if keys is None:
        keys = _KEYS[table] = tuple(table.columns.keys())
    return SimpleNamespace(**dict(zip(keys, values, strict=False)))


_KEYS: dict[Table, tuple[str, ...]] = {}
