"""Users, with "Sign out everywhere"; simplejwt's token lists without any token in them."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework_simplejwt.token_blacklist.admin import BlacklistedTokenAdmin, OutstandingTokenAdmin
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from .models import User
from .services import user_tokens_revoke


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    actions = ["sign_out_everywhere"]
    list_display = (*DjangoUserAdmin.list_display, "is_active", "tokens_valid_after")
    readonly_fields = ("tokens_valid_after", "is_demo")
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        (_("Sign-in"), {"fields": ("tokens_valid_after", "is_demo")}),
    )

    @admin.action(
        description=_("Sign out everywhere (end their tokens and sessions)"), permissions=["change"]
    )
    def sign_out_everywhere(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for user in queryset:
            user_tokens_revoke(user=user)
            count += 1
        message = ngettext(
            "Signed out %(count)d user everywhere: their tokens and sessions issued until now are refused.",
            "Signed out %(count)d users everywhere: their tokens and sessions issued until now are refused.",
            count,
        )
        self.message_user(request, message % {"count": count}, messages.SUCCESS)


class _NoTokenOutstandingAdmin(OutstandingTokenAdmin):
    """The token column is left out entirely (the table keeps only a digest, accounts/tokens.py)."""

    exclude = ("token",)

    def get_readonly_fields(self, *args: object, **kwargs: object) -> list[str]:
        return [field.name for field in self.model._meta.fields if field.name != "token"]


admin.site.unregister(OutstandingToken)
admin.site.unregister(BlacklistedToken)
admin.site.register(OutstandingToken, _NoTokenOutstandingAdmin)
admin.site.register(BlacklistedToken, BlacklistedTokenAdmin)
