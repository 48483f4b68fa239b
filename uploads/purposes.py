"""What a server-signed form upload may be for, and which folders count towards a user's quota.

The purposes accepted are configuration: ``settings.UPLOAD_PURPOSES`` (env ``UPLOAD_PURPOSES``, JSON)
maps each name to its folder, content types (each with its extensions), size limit and the
``success_action_status`` OSS answers with (200, 201 or 204). A purpose a feature app owns is also
registered by that app when Django starts (``AppConfig.ready``): the avatars app registers ``avatar``
with the image types its confirmation can verify and ``AVATAR_MAX_BYTES``, so its settings entry
names only the folder and the status. The uploads app signs forms but knows nothing of avatars
(which folders count towards the quota is ``ledger.folders``, re-exported here), so the layers keep
pointing one way. ``uploads.E050`` checks the setting at start-up.
"""

import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings

# Which folders count towards a user's quota is the ledger's (it keeps one row per object in them);
# re-exported here for the feature apps that register a purpose and its folder together.
from ledger.folders import usage_owner, usage_prefixes, usage_root_register, usage_roots  # noqa: F401

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
    # What OSS answers a successful form upload with ("PostObject": 200 and 204 with an empty body,
    # 201 with a PostResponse XML body); widgets and mini programs that wait for 200 or 201 get it.
    success_action_status: int = 204

    def extension(self, content_type: str, filename: str) -> str:
        """The extension the key keeps: the file's own if it is one accepted for its type, else the type's."""
        accepted = self.content_types[content_type]
        extension = posixpath.splitext(filename.replace("\\", "/"))[1].lower()
        return extension if extension in accepted else accepted[0]


_purposes: dict[str, UploadPurpose] = {}


def upload_purpose_register(purpose: UploadPurpose) -> None:
    """Called from a feature app's ``ready()``; registering the same name again replaces it."""
    if not purpose.folder.endswith("/") or purpose.folder.startswith("/") or ".." in purpose.folder:
        raise ValueError(f"folder must be a relative path ending with '/', got {purpose.folder!r}")
    if not purpose.content_types or not all(purpose.content_types.values()):
        raise ValueError("a purpose needs at least one content type, each with an extension")
    _purposes[purpose.name] = purpose


SUCCESS_ACTION_STATUSES = (200, 201, 204)
PURPOSE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
FOLDER = re.compile(r"^(?:[a-z0-9][a-z0-9_-]*/)+$")
CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
EXTENSION = re.compile(r"^\.[a-z0-9]{1,10}$")
# PostObject uploads at most 5 GB ("PostObject": no multipart).
POST_OBJECT_MAX_BYTES = 5 * 1024**3
SETTING_KEYS = {"folder", "content_types", "max_bytes", "success_action_status"}
APP_OWNED_KEYS = {"content_types", "max_bytes"}


def purpose_setting_problems(name: str, entry: Any) -> list[str]:
    """What is wrong with one ``UPLOAD_PURPOSES`` entry (empty: nothing); ``uploads.E050`` reports these."""
    if not PURPOSE_NAME.match(str(name)):
        return [f"the name {name!r} must be 1-32 of a-z, 0-9, '_' and '-', starting with a letter"]
    if not isinstance(entry, dict):
        return ["must be an object with folder, content_types, max_bytes, success_action_status"]
    problems = [f"unknown key {key!r}" for key in sorted(set(entry) - SETTING_KEYS)]
    owned = _purposes.get(name)
    if owned is not None:
        problems += [
            f"{key!r} is the {name} feature's own (its app registers it)"
            for key in sorted(APP_OWNED_KEYS & set(entry))
        ]
    folder = entry.get("folder", owned.folder if owned else None)
    if not isinstance(folder, str) or not FOLDER.match(folder):
        problems.append(
            f"folder must be like 'attachments/' (a-z, 0-9, '_', '-', ending with '/'), got {folder!r}"
        )
    if owned is None:
        types = entry.get("content_types")
        if not isinstance(types, dict) or not types:
            problems.append(
                'content_types must map each type to its extensions, e.g. {"application/pdf": [".pdf"]}'
            )
        else:
            for content_type, extensions in types.items():
                if not CONTENT_TYPE.match(str(content_type)):
                    problems.append(f"content type {content_type!r} is not a lower-case type/subtype")
                if (
                    not isinstance(extensions, list)
                    or not extensions
                    or not all(isinstance(e, str) and EXTENSION.match(e) for e in extensions)
                ):
                    problems.append(
                        f'{content_type!r} needs a list of extensions like [".pdf"], got {extensions!r}'
                    )
        size = entry.get("max_bytes")
        if type(size) is not int or not 1 <= size <= POST_OBJECT_MAX_BYTES:
            problems.append(
                f"max_bytes must be an integer from 1 to {POST_OBJECT_MAX_BYTES} (5 GB), got {size!r}"
            )
    status = entry.get("success_action_status", 204)
    if type(status) is not int or status not in SUCCESS_ACTION_STATUSES:
        problems.append(f"success_action_status must be 200, 201 or 204, got {status!r}")
    return problems


def upload_purpose_get(name: str) -> UploadPurpose | None:
    """The purpose ``name`` as configured now (``settings.UPLOAD_PURPOSES``), over what its app
    registered; None when it is not configured, or configured wrongly (``uploads.E050`` says how)."""
    purposes = settings.UPLOAD_PURPOSES
    entry = purposes.get(name) if isinstance(purposes, dict) else None
    if entry is None or purpose_setting_problems(name, entry):
        return None
    owned = _purposes.get(name)
    status = entry.get("success_action_status", owned.success_action_status if owned else 204)
    if owned is not None:
        return replace(owned, folder=entry.get("folder", owned.folder), success_action_status=status)
    limit = entry["max_bytes"]
    return UploadPurpose(
        name=name,
        folder=entry["folder"],
        content_types={content_type: tuple(exts) for content_type, exts in entry["content_types"].items()},
        max_bytes=lambda: limit,
        success_action_status=status,
    )


def upload_purpose_names() -> list[str]:
    purposes = settings.UPLOAD_PURPOSES
    return sorted(name for name in purposes if upload_purpose_get(name)) if isinstance(purposes, dict) else []
