"""The quota admin: each user's storage usage, and the place to give one user another quota.

The audit logs' admin pages are the audit app's (``audit/admin.py``)."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from aliyun import oss

from .models import UploadUsage
from .selectors import usage_summary_of
from .services.quota import upload_usage_recount


@admin.register(UploadUsage)
class UploadUsageAdmin(admin.ModelAdmin):
    """Each user's storage usage, and the place to give one user another quota (empty: the default)."""

    list_display = ("user", "used", "objects", "quota", "counted_at")
    list_select_related = ("user",)
    search_fields = ("=user__username",)
    search_help_text = _("Exact username.")
    raw_id_fields = ("user",)
    fields = (
        "user",
        "quota_bytes",
        "quota_objects",
        "stored_bytes",
        "stored_objects",
        "pending_bytes",
        "pending_objects",
        "counted_at",
        "updated_at",
    )
    readonly_fields = (
        "stored_bytes",
        "stored_objects",
        "pending_bytes",
        "pending_objects",
        "counted_at",
        "updated_at",
    )
    actions = ["recount"]

    def get_readonly_fields(self, request: HttpRequest, obj: UploadUsage | None = None) -> tuple[str, ...]:
        return (*self.readonly_fields, "user") if obj else self.readonly_fields

    @admin.display(description=_("used"))
    def used(self, obj: UploadUsage) -> str:
        return filesizeformat(usage_summary_of(obj).used_bytes)

    @admin.display(description=_("objects"))
    def objects(self, obj: UploadUsage) -> int:
        return usage_summary_of(obj).used_objects

    @admin.display(description=_("quota"))
    def quota(self, obj: UploadUsage) -> str:
        summary = usage_summary_of(obj)
        size = filesizeformat(summary.quota_bytes) if summary.quota_bytes else gettext("no limit")
        if summary.quota_objects:
            count = ngettext("%(count)d object", "%(count)d objects", summary.quota_objects) % {
                "count": summary.quota_objects
            }
        else:
            count = gettext("no object limit")
        return gettext("%(size)s, %(count)s") % {"size": size, "count": count}

    @admin.action(description=_("Count the selected users' folders in OSS now"), permissions=["change"])
    def recount(self, request: HttpRequest, queryset: QuerySet) -> None:
        for usage in queryset.select_related("user"):
            try:
                upload_usage_recount(user=usage.user)
            except oss.OssError as exc:
                message = gettext("%(user)s: OSS said %(code)s.") % {"user": usage.user, "code": exc.code}
                self.message_user(request, message, messages.ERROR)
                return
        counted = queryset.count()
        message = ngettext("Counted %(count)d user.", "Counted %(count)d users.", counted) % {
            "count": counted
        }
        self.message_user(request, message, messages.SUCCESS)
