"""Which folders of the bucket count towards a user's quota, and whose a key is.

``user/<id>/`` always; a feature app registers more roots when Django starts (the avatars app:
``avatars/<id>/``, its confirmed copies). The ledger keeps one row per object under these folders.
"""

from aliyun.policy import USER_ROOT, user_prefix

_usage_roots: list[str] = [USER_ROOT]

# Where ``aliyun_doctor`` writes its probe (operators.provisioning.PROBE_USER_PREFIX): no user has id 0,
# so the probe counts towards nobody; its event is recorded so the doctor can see it arrive.
PROBE_FOLDER = f"{USER_ROOT}0/"


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


def key_owner(key: str) -> int | None:
    """The user whose folders hold ``key`` under any registered root, or None (not a user's file)."""
    for root in _usage_roots:
        owner = usage_owner(root, key)
        if owner is not None:
            return owner
    return None
