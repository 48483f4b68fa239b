"""Isolation helpers shared by the policy property tests and the end-to-end runs.

Two readings of a ``*`` in a RAM resource, because Alibaba does not document which one it uses:

* across colons: the whole ARN is one glob (what the sandbox's engine does, ``sandbox.policy``);
* per segment: ``acs``, ``oss``, region, account and ``<bucket>/<key>`` are matched each on its own
  (``per_segment_allowed`` below, written here independently of the sandbox).

The product's session policy must give the same answer under both: allowed exactly when the key is
inside the caller's prefix and has no ``:``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from hypothesis import strategies as st

from sandbox.policy import is_allowed, parse_policy

# What the runs counted (keys, cases, operations, SDKs); printed at the end of the pytest run.
REPORT: Counter[str] = Counter()
USER_IDS = (1, 7, 10, 70, 700)
BUCKETS = ("demo-avatars", "avatars-test", "b-1", "a1b2c3", "0-bucket-9", "x" * 63)


def legit(key: str, user_id: int) -> bool:
    """What isolation promises: inside ``user/<id>/`` and without a colon (the policy's one cost)."""
    return key.startswith(f"user/{user_id}/") and ":" not in key


def object_arn(bucket: str, key: str, *, region: str, owner: str) -> str:
    return f"acs:oss:{region}:{owner}:{bucket}/{key}"


# --- the per-segment reading -------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _glob(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _segment_match(pattern: str, resource: str) -> bool:
    if pattern == "*":
        return True
    pattern_parts, resource_parts = pattern.split(":", 4), resource.split(":", 4)
    if len(pattern_parts) != 5 or len(resource_parts) != 5:
        return False
    return all(_glob(p).fullmatch(r) is not None for p, r in zip(pattern_parts, resource_parts, strict=True))


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _decide(document: Mapping[str, Any], action: str, resource: str) -> str:
    verdict = "none"
    for statement in document["Statement"]:
        actions = _as_list(statement["Action"])
        if not any(_glob(a, True).fullmatch(action) for a in actions):
            continue
        if not any(_segment_match(r, resource) for r in _as_list(statement["Resource"])):
            continue
        if statement["Effect"] == "Deny":
            return "deny"
        verdict = "allow"
    return verdict


def per_segment_allowed(documents: Iterable[Mapping[str, Any]], action: str, resource: str) -> bool:
    """Every policy allows and none denies, each ARN segment matched on its own."""
    decisions = [_decide(d, action, resource) for d in documents]
    return bool(decisions) and "deny" not in decisions and all(d == "allow" for d in decisions)


def across_colons_allowed(documents: Iterable[Mapping[str, Any]], action: str, resource: str) -> bool:
    """The sandbox's engine: the ARN is one string, ``*`` spans colons."""
    return is_allowed([parse_policy(dict(d)) for d in documents], action, resource)


READINGS = {"per-segment": per_segment_allowed, "across-colons": across_colons_allowed}


# --- generated keys ----------------------------------------------------------------------------


def colon_tricks(bucket: str, victim: int, attacker: int, owner: str, region: str) -> list[str]:
    """Keys an attacker (``attacker``) writes hoping to land in, or be readable from, ``victim``'s folder."""
    mine, theirs = f"user/{attacker}/", f"user/{victim}/"
    return [
        f"{theirs}x:{bucket}/{mine}y",
        f"{theirs}x:{owner}:{bucket}/{mine}y",
        f"{theirs}x:{region}:{owner}:{bucket}/{mine}y",
        f"{theirs}:{bucket}/{mine}",
        f"{theirs}x:{bucket}/{mine}",
        f"{theirs}a:b:c:{bucket}/{mine}z",
        f"x:{bucket}/{mine}y",
        f"{mine}x:{bucket}/{theirs}y",  # inside the attacker's prefix, but a colon: refused too
        f"{mine}a:b",
        f"{mine}:",
        f"avatars/{victim}/x:{bucket}/{mine}y",
        f"{theirs}%3A{bucket}/{mine}y",  # encoded colon: a literal "%3A", not a colon, so simply outside
    ]


def _fragments(bucket: str, user_id: int) -> list[str]:
    return [
        f"user/{user_id}/",
        f"user/{user_id}",
        f"user/{user_id}0/",
        f"user/{user_id + 1}/",
        "user/",
        "User/",
        ":",
        f":{bucket}/",
        f":{bucket}/user/{user_id}/",
        "/",
        "//",
        ".",
        "..",
        "./",
        "../",
        "%2F",
        "%2f",
        "%3A",
        "%25",
        "\\",
        "*",
        "?",
        " ",
        "+#%&=",
        "😀",
        "头像",
        "é",
        "\u202e",
        "a" * 300,
    ]


@st.composite
def keys_for(draw: st.DrawFn, bucket: str, user_id: int) -> str:
    """Unicode, ``:``, ``/``, ``.``/``..``, percent-encodings and very long keys; half start in the prefix."""
    pieces = st.one_of(
        st.sampled_from(_fragments(bucket, user_id)),
        st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
    )
    tail = "".join(draw(st.lists(pieces, max_size=10)))
    start = draw(st.sampled_from(["", f"user/{user_id}/", f"user/{user_id}/", f"user/{user_id + 3}/"]))
    if draw(st.booleans()) and draw(st.integers(0, 9)) == 0:
        tail += "z" * draw(st.integers(900, 1100))  # around OSS's 1023-byte limit
    return start + tail
