from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """The project's user from the first migration, so fields can be added without pain."""

    avatar_key = models.CharField(
        max_length=1024,
        blank=True,
        help_text="OSS object key of the confirmed avatar, always under user/<id>/.",
    )
