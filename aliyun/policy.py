"""The session policy attached to every AssumeRole call: pure functions, no I/O.

STS grants the intersection of this policy and the role's own policy, so even a role that
may write anywhere in the bucket yields a token that writes only under ``user/<id>/``.

Why it has two statements. OSS checks a request against the resource
``acs:oss:<region>:<bucket owner's account id>:<bucket>/<key>``. Whether RAM matches a ``*`` in a
policy's resource within one ARN segment or across colons is not documented, and an object key may
contain ``:``. Under the across-colons reading, ``acs:oss:*:*:<bucket>/user/7/*`` matches the key
``user/8/x:<bucket>/user/7/y`` (the region ``*`` swallows everything up to the second ``:``), so user 7
could write into user 8's folder. The policy is therefore safe under both readings twice over:

* the Allow names the region and the bucket owner's account, so its only wildcard is the trailing
  one after ``<bucket>/user/<id>/``: under either reading it matches exactly the keys that start with
  that prefix;
* an explicit Deny refuses every key that contains ``:``. Its pattern ``acs:oss:*:*:<bucket>/*:*``
  needs five colons under the across-colons reading, and a colon-free key gives the resource only
  four, so it never catches a legitimate key; per segment, it is "the key contains a colon".

Either statement alone keeps users apart under both readings; together, a wrong guess in one (a
region spelled differently by OSS, say) still leaves the other standing. The cost: keys with ``:``
are refused (name uploads without colons; the server-chosen avatar keys never have one).
"""

from typing import Any

from core.aliyun_names import ACCOUNT_ID, role_arn_account_id

# Write-only: no oss:GetObject, not even in the user's own folder. PutSymlink is oss:PutObject on the
# link and OSS does not check its target (Alibaba's PutSymlink "Usage notes" and "Permissions"), so a
# token may plant user/<id>/x -> any key of the bucket. A GET or HEAD through that link checks "the
# ACLs of the link and of the target"; whether RAM also evaluates the session policy against the
# target is not documented, and under the reading where it does not, a token allowed to read its
# own folder could read the whole bucket. Without GetObject no reading lets it read anything
# (tests/uploads/test_read_isolation.py runs both). Clients check an upload by its PUT's answer
# (ETag, CRC-64); the server reads with its own key.
UPLOAD_ACTIONS = (
    "oss:PutObject",  # PutObject, PostObject, PutSymlink and every multipart step but abort/list
    "oss:AbortMultipartUpload",
    "oss:ListParts",
)
# The root of every user's writable folder, ``user/<id>/``.
USER_ROOT = "user/"


def user_prefix(user_id: int) -> str:
    """The only folder a user's token may touch. The trailing slash matters: ``user/7*`` would
    also match ``user/70/``."""
    if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id <= 0:
        raise ValueError(f"user id must be a positive integer, got {user_id!r}")
    return f"{USER_ROOT}{user_id}/"


def bucket_owner_account_id(*, role_arn: str, override: str = "") -> str:
    """The account that owns the bucket: ``override`` when given, else the role's own account.

    A RAM role and the bucket it writes to normally belong to one Alibaba Cloud account, and the
    role ARN names it. Returns ``""`` when neither says (in production the system check ``uploads.E004``
    refuses a missing role ARN, and ``uploads.E012`` an override that is not an account id).
    """
    return override.strip() if override.strip() else role_arn_account_id(role_arn)


def region_spellings(region: str) -> tuple[str, ...]:
    """The region as a RAM resource may spell it: the standard id (``cn-hangzhou``, as in the ARNs
    OSS returns, e.g. an access point's) and the ``oss-`` form (``oss-cn-hangzhou``, as in many of
    Alibaba's RAM policy examples). Both are concrete, so naming both widens nothing."""
    return (region, f"oss-{region}")


def upload_policy(*, bucket: str, user_id: int, region: str, owner_account_id: str) -> dict[str, Any]:
    """The session policy for ``user_id``: the JSON-ready dict sent to AssumeRole (at most 2048 chars
    for a 63-character bucket name).

    Raises ``ValueError`` for a user id that is not a positive integer, an empty region or an account
    id that is not decimal digits: a policy with a gap there would be a wildcard.
    """
    if not ACCOUNT_ID.match(owner_account_id or ""):
        raise ValueError(f"the bucket owner's account id must be decimal digits, got {owner_account_id!r}")
    if not region or "*" in region or "?" in region or ":" in region:
        raise ValueError(f"the region must be a concrete region id, got {region!r}")
    prefix = user_prefix(user_id)
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": list(UPLOAD_ACTIONS),
                "Resource": [
                    f"acs:oss:{spelling}:{owner_account_id}:{bucket}/{prefix}*"
                    for spelling in region_spellings(region)
                ],
            },
            {
                "Effect": "Deny",
                "Action": ["oss:*"],
                "Resource": [f"acs:oss:*:*:{bucket}/*:*"],
            },
        ],
    }
