"""What an avatar may be: the image types every browser renders, how each is named and served, and
where confirmed avatars live. Pure: the services and the selectors of this app both read it."""

# Content type → the extension of the key the server picks for it. Only formats every browser renders.
AVATAR_CONTENT_TYPES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
}
# Other extensions a file of that type may carry; a form upload keeps the file's own when it is one of these.
AVATAR_EXTENSION_ALIASES = {"image/jpeg": (".jpeg",)}
# Confirmed avatars live outside every user's writable prefix, so nobody can swap one after the checks.
CONFIRMED_AVATAR_PREFIX = "avatars/"


def sniffed_image_type(head: bytes) -> str | None:
    """The image type the first bytes prove (magic numbers), or None: a declared ``image/png`` is a
    claim, these bytes are not. The server stores and serves the avatar as this type."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def avatar_content_disposition(content_type: str) -> str:
    """``inline`` with a fixed file name: the avatar is shown where it is opened, and the type it is
    served as (set on the copy, pinned in the signed URL) is always a raster image, which cannot run
    script; the name never comes from the uploader. Anything else is only ever an ``attachment``."""
    extension = AVATAR_CONTENT_TYPES.get(content_type)
    return f'inline; filename="avatar{extension}"' if extension else "attachment"


def avatar_served_type(avatar_key: str) -> str:
    """The type a confirmed avatar is served as, from the extension the server gave its key
    (``application/octet-stream`` for a key the server did not name, which is then never inline)."""
    for content_type, extension in AVATAR_CONTENT_TYPES.items():
        if avatar_key.endswith(extension):
            return content_type
    return "application/octet-stream"
