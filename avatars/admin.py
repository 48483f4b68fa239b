"""Avatar changes for reviewers (read-only, like the issuance log), and one user's whole audit story.

The per-user timeline lives here because it reads both logs: ``avatars`` may import ``uploads``,
never the reverse (``pyproject.toml``'s layers). The issuance list and the user's admin page link
to it by its URL name, ``admin:avatars_user_timeline``.
"""

from datetime import datetime

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from core.audit_admin import ReadOnlyAuditAdmin
from uploads.models import TokenIssuance

from .models import AvatarChange
from .selectors import user_audit_timeline

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
        issuance_admin = self.admin_site._registry.get(TokenIssuance)
        sees_issuances = issuance_admin is not None and issuance_admin.has_view_permission(request)
        sees_changes = self.has_view_permission(request)
        if not (sees_issuances or sees_changes):
            raise PermissionDenied
        before = _parse_before(request.GET.get("before", ""))
        timeline = user_audit_timeline(
            username=username,
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
            "account": User.objects.filter(username=username).first(),
            "timeline": timeline,
            "before": before,
            "sees_issuances": sees_issuances,
            "sees_changes": sees_changes,
            "page_size": TIMELINE_PAGE,
        }
        return TemplateResponse(request, "admin/avatars/user_timeline.html", context)


def _parse_before(text: str) -> datetime | None:
    try:
        value = parse_datetime(text)
    except ValueError:
        return None
    return value if value is not None and value.tzinfo is not None else None
