from .models import User


def user_avatar_url(user: User) -> str | None:
    """A short-lived signed GET URL of the confirmed avatar (filled in by the avatar feature)."""
    return None
