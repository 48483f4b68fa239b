"""A streamed CSV download of a queryset, for the admin's read-only audit logs.

Rows are read in chunks and written as they go, so an export of a million rows holds a few
thousand in memory at a time (Django's "How to create CSV output", streaming large CSV files).
"""

import csv
from collections.abc import Iterator, Sequence

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

CHUNK_ROWS = 2000


class _Echo:
    """A file-like object whose write() hands the line back, for csv.writer over a stream."""

    def write(self, value: str) -> str:
        return value


def _cell(value: object) -> object:
    """Blank for NULL, and no spreadsheet formulas from client-controlled text (user agents, keys)."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_rows(queryset: QuerySet, fields: Sequence[str], ordering: Sequence[str]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(fields)
    rows = queryset.order_by(*ordering).values_list(*fields).iterator(chunk_size=CHUNK_ROWS)
    for row in rows:
        yield writer.writerow([_cell(value) for value in row])


def csv_export_response(
    queryset: QuerySet, *, fields: Sequence[str], name: str, ordering: Sequence[str] = ("-created_at",)
) -> StreamingHttpResponse:
    """``queryset`` as a streamed ``text/csv`` attachment named ``<name>-<UTC time>.csv``.

    ``fields`` are model field names (``user_id`` for a foreign key's id), one column each, in order;
    the first line is the header. Values a spreadsheet would run as a formula get a leading quote.
    """
    filename = f"{name}-{timezone.now():%Y%m%d-%H%M%S}.csv"
    return StreamingHttpResponse(
        _csv_rows(queryset, fields, ordering),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
