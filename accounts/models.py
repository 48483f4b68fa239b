from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """The project's user from the first migration, so fields can be added without pain."""

    avatar_key = models.CharField(
        _("avatar key"),
        max_length=1024,
        blank=True,
        help_text=_(
            "OSS object key of the confirmed avatar, always under avatars/<id>/ (the server's copy)."
        ),
    )
    tokens_valid_after = models.DateTimeField(
        _("tokens valid after"),
        null=True,
        blank=True,
        help_text=_(
            "Sign-in cut-off: JWTs (access and refresh), sessions and upload credential links issued "
            "before this time are refused. Moved by a password change, a deactivation and the admin "
            "action 'Sign out everywhere'."
        ),
    )
    is_demo = models.BooleanField(
        _("demo user"),
        default=False,
        help_text=_(
            "Created by create_demo_users with a documented password: refused at sign-in when DEBUG is off."
        ),
    )

    # Set by set_password (a new password), cleared by save; a hash upgrade at login does not set it.
    password_changed_since_save = False

    def set_password(self, raw_password: str | None) -> None:
        super().set_password(raw_password)
        self.password_changed_since_save = True

    def check_password(self, raw_password: str) -> bool:
        """Django's check, whose re-hash of an outdated hash keeps the same password: it does not move
        the cut-off, so a hash upgrade at login signs nobody out."""

        def upgrade_hash(raw: str) -> None:
            self.password = make_password(raw)
            self.save(update_fields=["password"])

        return check_password(raw_password, self.password, upgrade_hash)

    def save(self, *args, **kwargs) -> None:
        """A new password (``set_password``: the admin's forms, ``changepassword``, any API) and a
        deactivation end everything issued before, whoever saves the user and however."""
        if self.password_changed_since_save or self._is_being_deactivated():
            self.tokens_valid_after = timezone.now()
            update_fields = kwargs.get("update_fields")
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "tokens_valid_after"}
        super().save(*args, **kwargs)
        self.password_changed_since_save = False

    def set_unusable_password(self) -> None:
        super().set_unusable_password()
        self.tokens_valid_after = timezone.now()

    def _is_being_deactivated(self) -> bool:
        return (
            not self.is_active
            and self.pk is not None
            and type(self).objects.filter(pk=self.pk, is_active=True).exists()
        )

    def get_session_auth_hash(self) -> str:
        """Sessions end with the cut-off too, not only with the password hash (Django's default).

        Django also accepts a session whose hash was made with a key in ``SECRET_KEY_FALLBACKS``, checked
        with its own password-only hash: such a session does not match this one, so during a key rotation
        sessions end (sign in again) rather than outlive a cut-off."""
        if self.tokens_valid_after is None:
            return super().get_session_auth_hash()
        value = f"{self.password}|{self.tokens_valid_after.isoformat()}"
        return salted_hmac("accounts.User.get_session_auth_hash", value, algorithm="sha256").hexdigest()
