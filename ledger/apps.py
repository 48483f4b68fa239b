from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LedgerConfig(AppConfig):
    """What the server knows is stored: the upload ledger, usage and reservations, the OSS event receiver."""

    name = "ledger"
    verbose_name = _("Stored files")

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
