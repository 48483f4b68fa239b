from django.apps import AppConfig
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class AvatarsConfig(AppConfig):
    """Avatars: uses identity (accounts) and upload credentials (uploads); nothing imports it back."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "avatars"
    verbose_name = _("Avatars")

    def ready(self) -> None:
        from uploads.purposes import UploadPurpose, upload_purpose_register, usage_root_register

        from .formats import AVATAR_CONTENT_TYPES, AVATAR_EXTENSION_ALIASES, CONFIRMED_AVATAR_PREFIX

        # Server-signed form uploads of avatars go to user/<id>/avatars/; confirmed copies, kept
        # under avatars/<id>/, count towards the user's quota too.
        upload_purpose_register(
            UploadPurpose(
                name="avatar",
                folder="avatars/",
                content_types={
                    content_type: (extension, *AVATAR_EXTENSION_ALIASES.get(content_type, ()))
                    for content_type, extension in AVATAR_CONTENT_TYPES.items()
                },
                max_bytes=lambda: settings.AVATAR_MAX_BYTES,
            )
        )
        usage_root_register(CONFIRMED_AVATAR_PREFIX)
