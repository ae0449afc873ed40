"""CSV a line at a time, for exports that stream and imports that never hold the whole file."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

# OWASP "CSV Injection": a cell starting with one of these is run as a formula by
# spreadsheet programs. Names, emails and browsers' user agents come from users, so
# such cells get a leading apostrophe.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_line(values: Iterable[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([defuse(value) for value in values])
    return buffer.getvalue()
