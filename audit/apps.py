from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    """Audit review: the reviewers' admin for every audit log (token issuances, credential URLs,
    avatar changes), the overview and its rollups, the per-user timeline, CSV export and retention.
    It reads the logs the other apps write; nothing imports it back."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"
    verbose_name = _("Audit")

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_delete

        from .services import deleted_account_rows_keep_id

        def keep_id(sender: object, instance: object, **kwargs: object) -> None:
            deleted_account_rows_keep_id(user=instance)

        # Deleting an account clears the user link of its audit rows; their account id stays.
        pre_delete.connect(keep_id, sender=get_user_model(), dispatch_uid="audit.keep_id", weak=False)
