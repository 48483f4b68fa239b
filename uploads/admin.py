"""The audit log for staff: read-only, filterable, searchable by exact values, exportable as CSV."""

import csv
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from ipaddress import ip_address

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Max, Min, Q, QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone
from django.utils.functional import cached_property

from .models import TokenIssuance

CSV_FIELDS = [
    "id",
    "created_at",
    "username",
    "user_id",
    "outcome",
    "auth_method",
    "prefix",
    "role_session_name",
    "access_key_id",
    "expiration",
    "sts_request_id",
    "error_code",
    "client_ip",
    "user_agent",
    "request_id",
]


class _Echo:
    """A file-like object whose write() hands the line back, for csv.writer over a stream."""

    def write(self, value: str) -> str:
        return value


def _cell(value: object) -> object:
    """Blank for NULL, and no spreadsheet formulas from client-controlled text (user agents)."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_rows(queryset: QuerySet) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_FIELDS)
    rows = queryset.order_by("-created_at").values_list(*CSV_FIELDS).iterator(chunk_size=2000)
    for row in rows:
        yield writer.writerow([_cell(value) for value in row])


class EstimatedCountPaginator(Paginator):
    """The change list counts once per page view; on a large table the exact COUNT(*) is the
    slow part, so above a threshold it is replaced by the planner's estimate (PostgreSQL)."""

    threshold = 100_000

    @cached_property
    def count(self) -> int:
        query = self.object_list.query
        if query.where or self.object_list.db != "default":
            return super().count
        from django.db import connection

        if connection.vendor != "postgresql":
            return super().count
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [TokenIssuance._meta.db_table],
            )
            estimate = cursor.fetchone()[0]
        return estimate if estimate > self.threshold else super().count


class CalendarQuerySet(QuerySet):
    """The admin's queryset, so the date hierarchy does not scan the table.

    To offer its drill-down links Django asks ``datetimes()`` for the days (months, years) that
    have rows: a SELECT DISTINCT over every row of the month, seconds on a big audit log. Here the
    range comes from MIN/MAX over the created_at index and every day in it is offered; an audit
    log of a live service has rows on every day anyway, and an empty day simply lists nothing.
    """

    def datetimes(
        self, field_name: str, kind: str, order: str = "ASC", tzinfo: object = None
    ) -> list[datetime]:
        if kind not in ("year", "month", "day"):
            return list(super().datetimes(field_name, kind, order=order, tzinfo=tzinfo))
        bounds = self.order_by().aggregate(first=Min(field_name), last=Max(field_name))
        if bounds["first"] is None:
            return []
        first, last = (timezone.localtime(bounds[name]).date() for name in ("first", "last"))
        days: list[date] = []
        current = first if kind == "day" else first.replace(day=1, month=1 if kind == "year" else first.month)
        while current <= last:
            days.append(current)
            if kind == "day":
                current += timedelta(days=1)
            elif kind == "month":
                current = (current.replace(day=28) + timedelta(days=4)).replace(day=1)
            else:
                current = current.replace(year=current.year + 1)
        if order == "DESC":
            days.reverse()
        return [timezone.make_aware(datetime.combine(day, time.min)) for day in days]


@admin.register(TokenIssuance)
class TokenIssuanceAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "username",
        "outcome",
        "auth_method",
        "prefix",
        "access_key_id",
        "client_ip",
        "error_code",
    )
    list_filter = ("outcome", "auth_method", "created_at")
    search_fields = ("=username", "=access_key_id", "=client_ip", "=request_id")
    search_help_text = "Exact username, STS access key id, client IP or request id."
    date_hierarchy = "created_at"
    list_select_related = ()  # the row carries a copied username; the user is not joined
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 100
    actions = ["export_csv"]
    readonly_fields = [field.name for field in TokenIssuance._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = CalendarQuerySet(self.model).all()
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """Exact, case-sensitive matches on the searched columns, each served by its own index.

        Django's ``=field`` is ``iexact`` (UPPER(column) on PostgreSQL, and a text cast for the IP),
        which no plain index serves, so each search scanned the whole audit log.

        A term is looked for in each column first (one index probe each), and the page filters on
        the columns that have it, usually one. An OR over all four columns would leave PostgreSQL
        to guess how the matches are spread over time: when a user's rows all lie in the past it
        walked the created_at index from today backwards through the whole table (the page and
        the date hierarchy's MIN/MAX); ``column = term`` ordered by created_at is one (column,
        created_at) index range however the rows are spread.
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        lookups = [Q(username=term), Q(access_key_id=term), Q(request_id=term)]
        try:
            lookups.append(Q(client_ip=str(ip_address(term))))
        except ValueError:
            pass
        present = [lookup for lookup in lookups if TokenIssuance.objects.filter(lookup).exists()]
        if not present:
            return queryset.none(), False
        match = present[0]
        for lookup in present[1:]:
            match |= lookup
        return queryset.filter(match), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: TokenIssuance | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: TokenIssuance | None = None) -> bool:
        return False

    @admin.action(description="Export selected rows as CSV", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> StreamingHttpResponse:
        filename = f"token-issuances-{timezone.now():%Y%m%d-%H%M%S}.csv"
        return StreamingHttpResponse(
            _csv_rows(queryset),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
