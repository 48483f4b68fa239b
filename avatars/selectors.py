import logging

from accounts.models import User
from aliyun import oss

from .formats import avatar_content_disposition, avatar_served_type

logger = logging.getLogger(__name__)

# Long enough to render the page and load the image, short enough that a leaked URL soon dies.
AVATAR_URL_SECONDS = 600


def user_avatar_url(user: User) -> str | None:
    """A short-lived signed GET URL of the confirmed avatar: the bucket stays private. ``None`` also while
    the server cannot sign (its own temporary credentials could not be renewed): the rest of the page works.
    Signed with temporary server credentials, the URL lasts no longer than they do (``oss.signed_get_url``)."""
    if not user.avatar_key:
        return None
    content_type = avatar_served_type(user.avatar_key)
    try:
        return oss.signed_get_url(
            user.avatar_key,
            AVATAR_URL_SECONDS,
            content_type=content_type,
            content_disposition=avatar_content_disposition(content_type),
        )
    except oss.OssError as exc:
        logger.warning("Avatar URL not signed: %s", exc.code)
        return None
