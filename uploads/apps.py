from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class UploadsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "uploads"
    verbose_name = _("Uploads")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from . import checks  # noqa: F401  (registers the system checks)
        from .services.credential_urls import credential_urls_revoke

        def end_credential_urls(sender: object, user: object = None, **kwargs: object) -> None:
            if user is not None:  # None: the session had no signed-in user
                credential_urls_revoke(user=user)

        # Any logout (the session form, the JWT logout endpoint) ends the user's credential URLs.
        user_logged_out.connect(end_credential_urls, dispatch_uid="uploads.end_credential_urls", weak=False)
