from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from . import checks  # noqa: F401  (registers the system checks)
        from .services import user_logged_out_revoke

        # Any logout (the login page's, the admin's, the JWT endpoint's) moves the user's sign-in
        # cut-off: every access token, refresh token and session issued before ends at once.
        user_logged_out.connect(user_logged_out_revoke, dispatch_uid="accounts.logout_cutoff", weak=False)
