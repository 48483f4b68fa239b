"""Password sign-in (API, login page, admin) and session look-ups go through this backend."""

from django.contrib.auth.backends import ModelBackend as DjangoModelBackend

from .models import User
from .selectors import user_can_sign_in


class ModelBackend(DjangoModelBackend):
    """Django's, except that demo users (documented passwords) cannot sign in, nor keep a session,
    while DEBUG is off."""

    def user_can_authenticate(self, user: User | None) -> bool:
        return super().user_can_authenticate(user) and user_can_sign_in(user=user)
