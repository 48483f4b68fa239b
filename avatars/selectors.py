from accounts.models import User
from aliyun import oss

from .formats import avatar_content_disposition, avatar_served_type

# Long enough to render the page and load the image, short enough that a leaked URL soon dies.
AVATAR_URL_SECONDS = 600


def user_avatar_url(user: User) -> str | None:
    """A short-lived signed GET URL of the confirmed avatar: the bucket stays private."""
    if not user.avatar_key:
        return None
    content_type = avatar_served_type(user.avatar_key)
    return oss.signed_get_url(
        user.avatar_key,
        AVATAR_URL_SECONDS,
        content_type=content_type,
        content_disposition=avatar_content_disposition(content_type),
    )
