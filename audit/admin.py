"""The reviewers' admin: every audit log read-only (token issuances, credential URLs, avatar changes),
filterable, searchable by exact values and exportable as CSV; the issuance overview; one user's
audit timeline. The one change a reviewer can make is ending credential URLs (an action that needs
the model's change permission and goes through ``uploads.services``)."""

from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.views.main import (
    ALL_VAR,
    IS_FACETS_VAR,
    IS_POPUP_VAR,
    ORDER_VAR,
    PAGE_VAR,
    TO_FIELD_VAR,
)
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Max, Min, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from avatars.models import AvatarChange
from uploads.models import CredentialUrl, TokenIssuance
from uploads.selectors import (
    CredentialUrlStatus,
    credential_url_status,
    credential_urls_ended,
    credential_urls_expired,
    credential_urls_live,
)
from uploads.services.credential_urls import credential_urls_revoke

from .admin_base import ReadOnlyAuditAdmin, audit_time_html
from .selectors import (
    ADDRESS_SAMPLE,
    OUTCOME_BADGES,
    OUTCOMES,
    WINDOWS,
    Anomaly,
    Overview,
    deleted_account_ids,
    deleted_accounts_rows_exist,
    issuance_overview,
    user_audit_timeline,
)

CSV_FIELDS = [
    "id",
    "created_at",
    "username",
    "user_id",
    "deleted_account_id",
    "outcome",
    "grant",
    "auth_method",
    "prefix",
    "object_key",
    "role_session_name",
    "access_key_id",
    "expiration",
    "sts_request_id",
    "error_code",
    "client_ip",
    "user_agent",
    "request_id",
    "attempts",
    "last_attempt_at",
]


# Query parameters of the change list that neither filter nor search (page, ordering, show all…).
UNFILTERED_PARAMS = {PAGE_VAR, ORDER_VAR, ALL_VAR, IS_POPUP_VAR, IS_FACETS_VAR, TO_FIELD_VAR}


class EstimatedCountPaginator(Paginator):
    """For the whole, unfiltered list (``TokenIssuanceAdmin.get_paginator`` decides): the change list
    counts once per page view, and on a large table the exact COUNT(*) is the slow part, so above a
    threshold it is replaced by the planner's estimate (PostgreSQL)."""

    threshold = 100_000

    @cached_property
    def count(self) -> int:
        if self.object_list.db != "default":
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


def _timeline_url(username: str) -> str | None:
    """The per-user audit timeline (``AvatarChangeAdmin.timeline_view`` below); None for a row of nobody
    in particular (a credential URL that does not exist has no user and an empty username)."""
    return reverse("admin:avatars_user_timeline", args=[username]) if username else None


@admin.register(TokenIssuance)
class TokenIssuanceAdmin(ReadOnlyAuditAdmin):
    # The columns a reviewer reads first, narrow enough for 1440 px with both sidebars open (long
    # values are clipped, whole in their tooltip); the STS access key id, prefix, policy, STS request id
    # and user agent are on each row's page, in the user's timeline and in the CSV export.
    list_display = (
        "time",
        "user_link",
        "outcome_badge",
        "error_code_short",
        "client_ip_short",
        "auth",
    )
    list_display_links = ("time",)
    list_filter = ("outcome", "grant", "auth_method", "created_at")
    exact_search_fields = ("username", "access_key_id", "request_id")
    ip_search_fields = ("client_ip",)
    search_help_text = _("Exact username, STS access key id, client IP or request id.")
    date_hierarchy = "created_at"
    list_select_related = ()  # the row carries a copied username; the user is not joined
    show_full_result_count = False
    list_per_page = 100
    csv_fields = tuple(CSV_FIELDS)
    csv_name = "token-issuances"

    class Media:
        css = {"all": ("css/audit-admin.css",)}

    def get_paginator(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
    ) -> Paginator:
        """An estimated count for the whole list, the exact one as soon as anything filters or searches."""
        whole = not (set(request.GET) - UNFILTERED_PARAMS)
        paginator = EstimatedCountPaginator if whole else Paginator
        return paginator(queryset, per_page, orphans, allow_empty_first_page)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = CalendarQuerySet(self.model).all()
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    @admin.display(description=_("user"), ordering="username")
    def user_link(self, obj: TokenIssuance) -> SafeString:
        if not obj.username:
            return format_html(
                '<span title="{}">—</span>', gettext("No user: a credential URL that does not exist")
            )
        return format_html(
            '<a href="{}" title="{}">{}</a>',
            _timeline_url(obj.username),
            gettext("This user's audit timeline"),
            obj.username,
        )

    @admin.display(description=_("outcome"), ordering="outcome")
    def outcome_badge(self, obj: TokenIssuance) -> SafeString:
        """The outcome, and ``x N`` for a row standing for N throttled requests (``attempts``)."""
        times = f" x{obj.attempts}" if obj.attempts > 1 else ""
        return format_html(
            '<span class="audit-badge audit-{}" title="{}">{}{}</span>',
            obj.outcome,
            obj.get_outcome_display(),
            OUTCOME_BADGES.get(obj.outcome, obj.outcome),
            times,
        )

    @admin.display(description=_("error code"), ordering="error_code")
    def error_code_short(self, obj: TokenIssuance) -> SafeString:
        return format_html('<span class="audit-clip" title="{0}">{0}</span>', obj.error_code)

    # --- the overview ------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        overview = path(
            "overview/",
            self.admin_site.admin_view(self.overview_view),
            name="uploads_tokenissuance_overview",
        )
        return [overview, *super().get_urls()]

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        """Counts per day and outcome, top users and anomalies over 7, 30 or 90 days (``?days=``),
        for staff with the view permission on the audit log (others: 403; anonymous: the login)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            days = int(request.GET.get("days", DEFAULT_WINDOW))
        except ValueError:
            days = DEFAULT_WINDOW
        if days not in WINDOWS:
            days = DEFAULT_WINDOW
        overview = issuance_overview(days=days)
        changelist = reverse("admin:uploads_tokenissuance_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": ngettext(
                "Token issuances: the last %(days)d day", "Token issuances: the last %(days)d days", days
            )
            % {"days": days},
            "subtitle": None,
            "opts": self.model._meta,
            "overview": overview,
            "windows": WINDOWS,
            "outcomes": [
                (value, label, OUTCOME_BADGES[value]) for value, label in TokenIssuance.Outcome.choices
            ],
            "totals": [
                (value, label, OUTCOME_BADGES[value], getattr(overview.totals, value))
                for value, label in TokenIssuance.Outcome.choices
            ],
            "rows": _overview_day_rows(changelist, overview),
            "tops": [
                (
                    title,
                    [
                        (entry, _top_url(changelist, entry.username, outcome), _timeline_url(entry.username))
                        for entry in entries
                    ],
                )
                for title, entries, outcome in (
                    (_("Issuances (issued + reused)"), overview.top_issuances, ""),
                    (_("Refusals"), overview.top_refusals, "refused"),
                    (_("Failures"), overview.top_failures, "failed"),
                )
            ],
            "anomalies": [
                (
                    anomaly,
                    _anomaly_url(changelist, anomaly),
                    _timeline_url(anomaly.username) if anomaly.username else None,
                )
                for anomaly in overview.anomalies[:ANOMALIES_SHOWN]
            ],
            "anomalies_more": max(0, len(overview.anomalies) - ANOMALIES_SHOWN),
            "address_sample": ADDRESS_SAMPLE,
            "chart": {
                "days": [day.day.isoformat() for day in overview.days],
                "series": [
                    {
                        "outcome": value,
                        "label": label,
                        "counts": [getattr(day, value) for day in overview.days],
                    }
                    for value, label in TokenIssuance.Outcome.choices
                ],
            },
            "changelist_url": changelist,
        }
        return TemplateResponse(request, "admin/uploads/tokenissuance/overview.html", context)


DEFAULT_WINDOW = 30
ANOMALIES_SHOWN = 50  # the newest; a window with more says how many more there are


def _list_url(base: str, **params: str) -> str:
    """The change list at ``base`` filtered by ``params`` (its own query parameters)."""
    return f"{base}?{urlencode(params)}"


def _top_url(base: str, username: str, outcome: str) -> str:
    return _list_url(base, q=username, outcome__exact=outcome) if outcome else _list_url(base, q=username)


def _day_params(day: date) -> dict[str, str]:
    """The date hierarchy's parameters for one local day."""
    return {
        "created_at__year": str(day.year),
        "created_at__month": str(day.month),
        "created_at__day": str(day.day),
    }


def _overview_day_rows(base: str, overview: Overview) -> list[dict[str, object]]:
    """Newest day first: its counts, each linked to that day's rows of that outcome in the list."""
    rows = []
    for counts in reversed(overview.days):
        params = _day_params(counts.day)
        rows.append(
            {
                "day": counts.day,
                "url": _list_url(base, **params),
                "cells": [
                    (getattr(counts, outcome), _list_url(base, **params, outcome__exact=outcome))
                    for outcome in OUTCOMES
                ],
                "total": counts.total,
            }
        )
    return rows


def _anomaly_url(base: str, anomaly: Anomaly) -> str:
    """The change list showing the rows behind an anomaly."""
    if anomaly.kind == "failure_burst":
        return _list_url(
            base,
            outcome__exact="failed",
            created_at__gte=anomaly.start.isoformat(),
            created_at__lt=anomaly.end.isoformat(),
        )
    params = {"q": anomaly.username, **_day_params(timezone.localdate(anomaly.start))}
    if anomaly.kind == "refusal_flood":
        params["outcome__exact"] = "refused"
    return _list_url(base, **params)


class CredentialUrlStatusFilter(admin.SimpleListFilter):
    """Live, expired, or ended (revoked, or cut off by the user's sign-in cut-off), as
    ``credential_url_status`` decides it for one row."""

    title = _("status")
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            (CredentialUrlStatus.LIVE.value, CredentialUrlStatus.LIVE.label),
            (CredentialUrlStatus.EXPIRED.value, CredentialUrlStatus.EXPIRED.label),
            ("ended", _("ended")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == CredentialUrlStatus.LIVE:
            return credential_urls_live(queryset, now=timezone.now())
        if self.value() == CredentialUrlStatus.EXPIRED:
            return credential_urls_expired(queryset, now=timezone.now())
        if self.value() == "ended":
            return credential_urls_ended(queryset)
        return queryset


@admin.register(CredentialUrl)
class CredentialUrlAdmin(ReadOnlyAuditAdmin):
    """Who holds credential URLs, and a way to end some of them.

    Read-only like the audit logs: the one change is the action, which needs the model's change
    permission (``has_end_permission``) while ``has_change_permission`` stays False, so no field of
    any row can be edited, superusers included. The secret's hash is never shown nor exported.
    """

    list_display = (
        "created",
        "user_link",
        "status_badge",
        "expires",
        "auth",
        "client_ip_short",
        "request_id_short",
        "user_agent_short",
    )
    list_display_links = ("created",)
    list_filter = (CredentialUrlStatusFilter,)
    list_select_related = ("user",)
    exact_search_fields = ("user__username", "request_id")
    ip_search_fields = ("client_ip",)
    search_help_text = _("Exact username, request id or client IP.")
    list_per_page = 100
    fields = (
        "user_link",
        "status_badge",
        "created",
        "expires",
        "revoked",
        "auth",
        "client_ip_short",
        "request_id_short",
        "user_agent_short",
    )
    exclude = ("secret_hash",)
    csv_fields = (
        "id",
        "created_at",
        "expires_at",
        "revoked_at",
        "user_id",
        "user__username",
        "auth_method",
        "client_ip",
        "user_agent",
        "request_id",
    )
    csv_name = "credential-urls"
    actions = ["export_csv", "end_selected"]

    class Media:
        css = {"all": ("css/audit-admin.css",)}

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> tuple[str, ...]:
        return self.fields

    def has_end_permission(self, request: HttpRequest) -> bool:
        """Ending credential URLs is what the model's change permission grants here."""
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    @admin.action(description=_("End the selected credential URLs"), permissions=["end"])
    def end_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        ended = credential_urls_revoke(ids=queryset.values_list("pk", flat=True))
        if ended:
            LogEntry.objects.log_actions(
                user_id=request.user.pk,
                queryset=CredentialUrl.objects.filter(pk__in=ended),
                action_flag=CHANGE,
                change_message=[
                    {"changed": {"fields": [str(self.opts.get_field("revoked_at").verbose_name)]}}
                ],
            )
        message = ngettext(
            "Ended %(count)d credential URL.", "Ended %(count)d credential URLs.", len(ended)
        ) % {"count": len(ended)}
        self.message_user(request, message, messages.SUCCESS if ended else messages.WARNING)

    @admin.display(description=_("created at"), ordering="created_at")
    def created(self, obj: CredentialUrl) -> SafeString:
        return audit_time_html(obj.created_at)

    @admin.display(description=_("expires at"), ordering="expires_at")
    def expires(self, obj: CredentialUrl) -> SafeString:
        return audit_time_html(obj.expires_at)

    @admin.display(description=_("revoked at"), ordering="revoked_at")
    def revoked(self, obj: CredentialUrl) -> SafeString:
        return audit_time_html(obj.revoked_at)

    @admin.display(description=_("user"), ordering="user__username")
    def user_link(self, obj: CredentialUrl) -> SafeString:
        url = reverse("admin:accounts_user_change", args=[obj.user_id])
        return format_html('<a href="{}">{}</a>', url, obj.user.username)

    @admin.display(description=_("status"))
    def status_badge(self, obj: CredentialUrl) -> SafeString:
        status = credential_url_status(obj)
        return format_html('<span class="audit-badge audit-{}">{}</span>', status.value, status.label)

    @admin.display(description=_("request id"), ordering="request_id")
    def request_id_short(self, obj: CredentialUrl) -> SafeString:
        return format_html('<span class="audit-clip audit-mono" title="{0}">{0}</span>', obj.request_id)

    @admin.display(description=_("user agent"))
    def user_agent_short(self, obj: CredentialUrl) -> SafeString:
        return format_html('<span class="audit-clip" title="{0}">{0}</span>', obj.user_agent)


# --- Avatar changes, and one user's audit timeline -------------------------------------------------

TIMELINE_PAGE = 200


@admin.register(AvatarChange)
class AvatarChangeAdmin(ReadOnlyAuditAdmin):
    list_display = ("time", "user_link", "kind_badge", "reason", "object_key_short", "client_ip")
    list_display_links = ("time",)
    list_filter = ("kind", "reason", "auth_method", "created_at")
    exact_search_fields = ("username", "request_id", "object_key", "etag")
    ip_search_fields = ("client_ip",)
    search_help_text = _("Exact username, request id, object key, ETag or client IP.")
    date_hierarchy = "created_at"
    list_per_page = 100
    show_full_result_count = False
    csv_fields = (
        "id",
        "created_at",
        "username",
        "user_id",
        "deleted_account_id",
        "kind",
        "reason",
        "object_key",
        "etag",
        "avatar_key",
        "auth_method",
        "client_ip",
        "user_agent",
        "request_id",
    )
    csv_name = "avatar-changes"

    class Media:
        css = {"all": ("css/audit-admin.css",)}

    @admin.display(description=_("user"), ordering="username")
    def user_link(self, obj: AvatarChange) -> SafeString:
        url = reverse("admin:avatars_user_timeline", args=[obj.username])
        return format_html(
            '<a href="{}" title="{}">{}</a>', url, gettext("This user's audit timeline"), obj.username
        )

    @admin.display(description=_("what"), ordering="kind")
    def kind_badge(self, obj: AvatarChange) -> SafeString:
        return format_html('<span class="audit-badge audit-{}">{}</span>', obj.kind, obj.get_kind_display())

    @admin.display(description=_("object key"))
    def object_key_short(self, obj: AvatarChange) -> SafeString:
        return format_html('<span class="audit-clip audit-mono" title="{0}">{0}</span>', obj.object_key)

    def get_urls(self) -> list[URLPattern]:
        timeline = path(
            "timeline/<str:username>/",
            self.admin_site.admin_view(self.timeline_view),
            name="avatars_user_timeline",
        )
        return [timeline, *super().get_urls()]

    def timeline_view(self, request: HttpRequest, username: str) -> HttpResponse:
        """One user's issuances and avatar changes, newest first, with the addresses and user agents
        they came from. Each log is shown to staff holding its view permission; neither: 403."""
        sees_issuances = self.admin_site.is_registered(TokenIssuance) and self.admin_site.get_model_admin(
            TokenIssuance
        ).has_view_permission(request)
        sees_changes = self.has_view_permission(request)
        if not (sees_issuances or sees_changes):
            raise PermissionDenied
        before = _parse_before(request.GET.get("before", ""))
        account = User.objects.filter(username=username).first()
        # ?deleted=1: the rows of deleted accounts that had this name, never shown as the current one's;
        # &account=<id>: only those of the deleted account that had that id.
        deleted = request.GET.get("deleted") == "1" or account is None
        deleted_id = _parse_id(request.GET.get("account", "")) if deleted else None
        timeline = user_audit_timeline(
            username=username,
            account_id=None if deleted else account.pk,
            deleted_account_id=deleted_id,
            before=before,
            limit=TIMELINE_PAGE,
            issuances=sees_issuances,
            avatar_changes=sees_changes,
        )
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Audit timeline of %(username)s") % {"username": username},
            "subtitle": None,
            "opts": self.model._meta,
            "username": username,
            # Account facts (join date, last login, staff, avatar) only for reviewers who may view users.
            "account": account if not deleted and request.user.has_perm("accounts.view_user") else None,
            "account_exists": account is not None,
            "deleted": deleted,
            "deleted_rows": not deleted and deleted_accounts_rows_exist(username=username),
            "deleted_ids": deleted_account_ids(username=username) if deleted else [],
            "deleted_id": deleted_id,
            # The next page keeps whose rows these are.
            "older_query": urlencode(
                {
                    **({"deleted": "1"} if request.GET.get("deleted") == "1" else {}),
                    **({"account": deleted_id} if deleted_id is not None else {}),
                    **({"before": timeline.older.isoformat()} if timeline.older else {}),
                }
            ),
            "timeline": timeline,
            "before": before,
            "sees_issuances": sees_issuances,
            "sees_changes": sees_changes,
            "page_size": TIMELINE_PAGE,
        }
        return TemplateResponse(request, "admin/avatars/user_timeline.html", context)


def _parse_id(text: str) -> int | None:
    """A positive account id from the query string; None for anything else."""
    if text.isascii() and text.isdigit() and len(text) <= 18 and int(text) > 0:
        return int(text)
    return None


def _parse_before(text: str) -> datetime | None:
    try:
        value = parse_datetime(text)
    except ValueError:
        return None
    return value if value is not None and value.tzinfo is not None else None
