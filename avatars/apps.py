from django.apps import AppConfig


class AvatarsConfig(AppConfig):
    """Avatars: uses identity (accounts) and upload credentials (uploads); nothing imports it back."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "avatars"
