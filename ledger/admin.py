"""The quota admin (each user's usage, another quota for one user) and the ledger, read-only."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from aliyun import oss

from .models import StoredObject, UploadUsage
from .selectors import usage_summary_of
from .services.reconcile import ledger_reconcile


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
        "pending_until",
        "counted_at",
        "updated_at",
    )
    readonly_fields = (
        "stored_bytes",
        "stored_objects",
        "pending_bytes",
        "pending_objects",
        "pending_until",
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
        users = [usage.user for usage in queryset.select_related("user")]
        try:
            report = ledger_reconcile(users=users)
        except oss.OssError as exc:
            self.message_user(request, gettext("OSS said %(code)s.") % {"code": exc.code}, messages.ERROR)
            return
        message = ngettext(
            "Counted %(count)d user; %(drift)d difference(s) corrected.",
            "Counted %(count)d users; %(drift)d difference(s) corrected.",
            len(users),
        ) % {"count": len(users), "drift": report.drift}
        self.message_user(request, message, messages.SUCCESS)


@admin.register(StoredObject)
class StoredObjectAdmin(admin.ModelAdmin):
    """The ledger: what OSS reported under each user's folders. Read-only: OSS is the truth."""

    list_display = ("key", "user", "present", "size", "uploaded_at", "principal_id", "source_ip")
    list_filter = ("present",)
    search_fields = ("=user__username", "=key")
    search_help_text = _("Exact username or key.")
    list_select_related = ("user",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: StoredObject | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: StoredObject | None = None) -> bool:
        return False
