"""What a server-signed form upload may be for, and which folders count towards a user's quota.

The uploads app signs PostObject policies and counts usage but knows nothing of avatars: a feature
app registers its purpose (folder, accepted types, size limit) and the folder where it keeps
confirmed copies when Django starts (``AppConfig.ready``), so the layers keep pointing one way.
"""

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aliyun.policy import USER_ROOT, user_prefix

# What POST /api/uploads/post-policy/ signs for when the body names no purpose (the avatars app registers it).
DEFAULT_PURPOSE = "avatar"


@dataclass(frozen=True)
class UploadPurpose:
    """One kind of form upload.

    ``folder`` is inside ``user/<id>/`` and ends with ``/``. ``content_types`` maps each accepted
    Content-Type to the file-name extensions kept for it (lower case, with the dot); the first one
    is used when the client's file name has none of them. ``max_bytes`` is read at call time, so a
    settings change applies at once.
    """

    name: str
    folder: str
    content_types: Mapping[str, tuple[str, ...]]
    max_bytes: Callable[[], int]

    def extension(self, content_type: str, filename: str) -> str:
        """The extension the key keeps: the file's own if it is one accepted for its type, else the type's."""
        accepted = self.content_types[content_type]
        extension = posixpath.splitext(filename.replace("\\", "/"))[1].lower()
        return extension if extension in accepted else accepted[0]


_purposes: dict[str, UploadPurpose] = {}
_usage_roots: list[str] = [USER_ROOT]


def upload_purpose_register(purpose: UploadPurpose) -> None:
    """Called from a feature app's ``ready()``; registering the same name again replaces it."""
    if not purpose.folder.endswith("/") or purpose.folder.startswith("/") or ".." in purpose.folder:
        raise ValueError(f"folder must be a relative path ending with '/', got {purpose.folder!r}")
    if not purpose.content_types or not all(purpose.content_types.values()):
        raise ValueError("a purpose needs at least one content type, each with an extension")
    _purposes[purpose.name] = purpose


def upload_purpose_get(name: str) -> UploadPurpose | None:
    return _purposes.get(name)


def upload_purpose_names() -> list[str]:
    return sorted(_purposes)


def usage_root_register(root: str) -> None:
    """A folder ``<root><user id>/…`` whose objects count towards that user's quota (e.g. ``avatars/``)."""
    if not root.endswith("/") or root.startswith("/"):
        raise ValueError(f"root must be a relative path ending with '/', got {root!r}")
    if root not in _usage_roots:
        _usage_roots.append(root)


def usage_roots() -> list[str]:
    return list(_usage_roots)


def usage_prefixes(user_id: int) -> list[str]:
    """Every folder that counts towards ``user_id``'s quota: ``user/<id>/`` first."""
    own = user_prefix(user_id)
    return [own, *(f"{root}{user_id}/" for root in _usage_roots if root != USER_ROOT)]


def usage_owner(root: str, key: str) -> int | None:
    """The user id a key under ``root`` belongs to (``avatars/7/x.png`` → 7), or None."""
    if not key.startswith(root):
        return None
    segment, sep, _ = key[len(root) :].partition("/")
    if not sep or not segment.isascii() or not segment.isdigit() or segment.startswith("0"):
        return None
    return int(segment)
