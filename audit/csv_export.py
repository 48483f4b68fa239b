"""A streamed CSV download of a queryset, for the admin's read-only audit logs.

Rows are read in chunks and written as they go, so an export of a million rows holds a few
thousand in memory at a time (Django's "How to create CSV output", streaming large CSV files).
"""

import csv
import re
from collections.abc import Iterator, Sequence
from decimal import Decimal

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

CHUNK_ROWS = 2000

# What makes a spreadsheet read a cell as a formula when it is the cell's first character: OWASP's
# "CSV Injection" page and ASVS 5.0 requirement 1.2.10 name = + - @, tab, carriage return and NUL.
FORMULA_STARTS = "=+-@\t\r\0"
# Where a spreadsheet may start a cell inside our value: after any list separator it might use
# (",", ";", tab), a line break, or a quote that ends a quoted run early when the reader's separator
# is not ours (a ";" reader sees ","-separated quotes in the middle of its own cells).
_CELL_BOUNDARY = ",;\t\r\n\"'"
# A formula start (after optional spaces) at the start of the value or after a boundary.
_FORMULA_AT_A_CELL_START = re.compile(
    rf"(?:^|(?<=[{re.escape(_CELL_BOUNDARY)}]))(?=[^\S\t\r\n]*[{re.escape(FORMULA_STARTS)}])"
)


class _Echo:
    """A file-like object whose write() hands the line back, for csv.writer over a stream."""

    def write(self, value: str) -> str:
        return value


def csv_cell(value: object) -> str:
    """``value`` as text no spreadsheet runs as a formula, whatever list separator it reads with.

    NULL is blank. In text, every place a cell could begin, the start of the value and after a
    separator, line break or quote (``_CELL_BOUNDARY``), gets a ``'`` when what follows (past any
    spaces) starts a formula: ``avatar;=cmd|' /C calc'!A0`` becomes ``avatar;'=cmd|' /C calc'!A0``,
    so a ``;``-separated reading (German, French Excel) sees a text cell ``'=cmd…``: OWASP's
    advice (a leading quote) applied at every cell start, not only the first. Numbers are written
    as they are (``-5`` stays a number); anything else goes through its text (a JSON value's).
    """
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal):  # bool too
        return str(value)
    return _FORMULA_AT_A_CELL_START.sub("'", str(value))


def csv_rows(rows: Iterator[Sequence[object]]) -> Iterator[str]:
    """Each row as one CSV line: every field quoted (a separator inside a value is never a cell
    boundary to a reader using that separator) and neutralised (``csv_cell``).

    Lines end in ``\n``, not RFC 4180's ``\r\n`` (every spreadsheet reads both): a value ending in
    a separator puts a reader with that separator inside a quoted cell that begins with the line
    end, and a cell may not begin with a carriage return.
    """
    writer = csv.writer(_Echo(), quoting=csv.QUOTE_ALL, lineterminator="\n")
    for row in rows:
        yield writer.writerow([csv_cell(value) for value in row])


def _csv_rows(queryset: QuerySet, fields: Sequence[str], ordering: Sequence[str]) -> Iterator[str]:
    yield from csv_rows(iter([fields]))
    yield from csv_rows(queryset.order_by(*ordering).values_list(*fields).iterator(chunk_size=CHUNK_ROWS))


def csv_export_response(
    queryset: QuerySet, *, fields: Sequence[str], name: str, ordering: Sequence[str] = ("-created_at",)
) -> StreamingHttpResponse:
    """``queryset`` as a streamed ``text/csv`` attachment named ``<name>-<UTC time>.csv``.

    ``fields`` are model field names (``user_id`` for a foreign key's id), one column each, in order;
    the first line is the header. Every field is quoted, and a value that could start a formula in any
    spreadsheet's reading gets a leading quote there (``csv_cell``).
    """
    filename = f"{name}-{timezone.now():%Y%m%d-%H%M%S}.csv"
    return StreamingHttpResponse(
        _csv_rows(queryset, fields, ordering),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
