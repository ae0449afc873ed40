"""CSV lines read back as written, and a cell a spreadsheet would run as a formula is defused."""

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from twofold.core.csv_stream import FORMULA_START, csv_line


@given(st.lists(st.text(), min_size=1, max_size=6))
def test_a_line_reads_back_with_formulas_defused(values):
    [row] = list(csv.reader(io.StringIO(csv_line(values), newline="")))
    expected = ["'" + v if v.startswith(FORMULA_START) else v for v in values]
    assert row == expected
    assert not any(cell.startswith(FORMULA_START) for cell in row)


def test_numbers_and_empty_cells():
    assert csv_line([1, None, "", "=SUM(A1)", "-2"]) == "1,,,'=SUM(A1),'-2\r\n"
