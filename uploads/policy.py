"""The session policy attached to every AssumeRole call: a pure function, no I/O.

STS grants the intersection of this policy and the role's own policy, so even a role that
may write anywhere in the bucket yields a token that writes only under ``user/<id>/``.
"""

from typing import Any

UPLOAD_ACTIONS = (
    "oss:PutObject",  # PutObject, PostObject and every multipart step but abort/list
    "oss:AbortMultipartUpload",
    "oss:ListParts",
    "oss:GetObject",  # GET and HEAD, so a client can check what it uploaded
)


def user_prefix(user_id: int) -> str:
    """The only folder a user's token may touch. The trailing slash matters: ``user/7*`` would
    also match ``user/70/``."""
    if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id <= 0:
        raise ValueError(f"user id must be a positive integer, got {user_id!r}")
    return f"user/{user_id}/"


def upload_policy(*, bucket: str, user_id: int) -> dict[str, Any]:
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": list(UPLOAD_ACTIONS),
                "Resource": [f"acs:oss:*:*:{bucket}/{user_prefix(user_id)}*"],
            }
        ],
    }
