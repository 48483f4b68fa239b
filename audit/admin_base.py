"""What the admin pages of the append-only audit logs share (``uploads.TokenIssuance``,
``avatars.AvatarChange``, and the list of credential URLs): read-only for everyone, searched by exact
values, exported as streamed CSV, times shown to the second with their time zone."""

from datetime import datetime
from ipaddress import ip_address

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from uploads.models import TokenIssuance

from .csv_export import csv_export_response


def audit_time(value: datetime | None) -> str:
    """``2026-11-29 16:37:12 UTC``: local time (``TIME_ZONE``) to the second, with the zone's name."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname() or local.strftime('%z')}"


def audit_time_html(value: datetime | None) -> SafeString:
    """``audit_time`` in a ``<time>`` element whose ``datetime`` is the exact UTC instant."""
    if value is None:
        return format_html("{}", "")
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), audit_time(value))


class ReadOnlyAuditAdmin(admin.ModelAdmin):
    """Nobody adds, changes or deletes audit rows here, superusers included; viewing needs the model's
    view permission.

    Search is by exact value (``exact_search_fields``, plus ``ip_search_fields`` when the term is an
    IP address), case-sensitive, each served by a (column, created_at) index. Django's ``=field`` is
    ``iexact`` (UPPER(column) on PostgreSQL, a text cast for an IP), which no plain index serves.
    A term is looked for in each column first (one index probe each) and the page filters on the
    columns that have it, usually one: an OR over all of them left PostgreSQL to guess how the
    matches are spread over time, and when they all lay in the past it walked the created_at index
    through the whole table.
    """

    exact_search_fields: tuple[str, ...] = ()
    ip_search_fields: tuple[str, ...] = ()
    csv_fields: tuple[str, ...] = ()
    csv_name = "audit"
    actions = ["export_csv"]

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        return self.exact_search_fields + self.ip_search_fields  # shows the search box

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        lookups = [Q(**{field: term}) for field in self.exact_search_fields]
        try:
            address = str(ip_address(term))
        except ValueError:
            pass
        else:
            lookups += [Q(**{field: address}) for field in self.ip_search_fields]
        present = [lookup for lookup in lookups if self.model._default_manager.filter(lookup).exists()]
        if not present:
            return queryset.none(), False
        match = present[0]
        for lookup in present[1:]:
            match |= lookup
        return queryset.filter(match), False

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description=_("Export selected rows as CSV"), permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> StreamingHttpResponse:
        return csv_export_response(queryset, fields=self.csv_fields, name=self.csv_name)

    @admin.display(description=_("time"), ordering="created_at")
    def time(self, obj: object) -> SafeString:
        return audit_time_html(obj.created_at)  # type: ignore[attr-defined]

    @admin.display(description=_("auth"), ordering="auth_method")
    def auth(self, obj: object) -> str:
        """The label the filter shows ("Session", "JWT", "Credential URL"), not the stored value."""
        labels = dict(TokenIssuance.AuthMethod.choices)
        return labels.get(obj.auth_method, obj.auth_method)  # type: ignore[attr-defined]

    @admin.display(description=_("client IP"), ordering="client_ip")
    def client_ip_short(self, obj: object) -> SafeString:
        return format_html(
            '<span class="audit-clip audit-ip audit-mono" title="{0}">{0}</span>',
            obj.client_ip or "",  # type: ignore[attr-defined]
        )
