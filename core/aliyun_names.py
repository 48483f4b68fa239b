"""Alibaba Cloud naming rules, and the one place that parses role ARNs and endpoints.

Shared by the settings checks, the Alibaba Cloud seam (``aliyun/``), the operator commands and the
sandbox, so that what the app accepts and what the sandbox accepts cannot drift apart.
"""

import re
from ipaddress import ip_address
from urllib.parse import urlsplit

# acs:ram::<account id>:role/<role name>; role names are 1-64 letters, digits, '.', '_' or '-'.
ROLE_ARN = re.compile(r"^acs:ram::\d+:role/[A-Za-z0-9._-]{1,64}$")
# 3-63 lower-case letters, digits and hyphens, starting and ending with a letter or digit.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
# RoleSessionName: 2-64 of A-Z a-z 0-9 . @ - _
ROLE_SESSION_NAME = re.compile(r"^[A-Za-z0-9.@_-]{2,64}$")
# An Alibaba Cloud account id, as it stands in ARNs: decimal digits.
ACCOUNT_ID = re.compile(r"^\d{1,32}$")
# x-oss-object-type of a symbolic link (PutSymlink); HEAD and GET of one answer with its target.
SYMLINK_OBJECT_TYPE = "Symlink"


def is_loopback_host(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1 (brackets allowed): the only places plain http and the sandbox belong."""
    if host == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def endpoint_host(endpoint: str) -> str:
    """The host of an endpoint given either bare (``sts.aliyuncs.com``, ``127.0.0.1:8701``, as the STS
    SDK wants it) or as a URL (``http://127.0.0.1:8702``, as oss2 takes it); ``""`` if malformed."""
    try:
        return urlsplit(endpoint if "//" in endpoint else f"//{endpoint}").hostname or ""
    except ValueError:
        return ""


def is_loopback_endpoint(endpoint: str) -> bool:
    """The endpoint is on this machine (the local sandbox): see ``is_loopback_host``."""
    return is_loopback_host(endpoint_host(endpoint))


def endpoint_protocol(endpoint: str) -> str:
    """``http`` only for a loopback endpoint (the local sandbox); ``https`` everywhere else."""
    return "http" if is_loopback_endpoint(endpoint) else "https"


def role_arn_account_id(role_arn: str) -> str:
    """The account id in ``acs:ram::<account id>:role/<name>``, or ``""`` if the ARN is malformed."""
    if not ROLE_ARN.match(role_arn or ""):
        return ""
    return role_arn.split(":")[3]


def role_arn_name(role_arn: str) -> str:
    """The role name in ``acs:ram::<account id>:role/<name>``, or ``""`` if the ARN is malformed."""
    if not ROLE_ARN.match(role_arn or ""):
        return ""
    return role_arn.rpartition(":role/")[2]


def ram_user_name(caller_arn: str) -> str | None:
    """``acs:ram::<account>:user/<name>`` (GetCallerIdentity's Arn) → ``<name>``; None for a root or role ARN."""
    _, sep, name = caller_arn.rpartition(":user/")
    return name if sep and name else None


# Where the server's own identity comes from, in the order the first configured one is used: an AccessKey
# pair (ALIYUN_ACCESS_KEY_ID), then the alibabacloud-credentials chain's standard sources in the chain's own
# order (its DefaultCredentialsProvider: OIDC before the ECS metadata service before a credentials URI).
ACCESS_KEY, RRSA, ECS_RAM_ROLE, CREDENTIALS_URI = "access_key", "rrsa", "ecs_ram_role", "credentials_uri"


def server_identity_sources(
    *,
    access_key_id: str,
    role_arn: str,
    oidc_provider_arn: str,
    oidc_token_file: str,
    ecs_metadata: str,
    credentials_uri: str,
) -> list[str]:
    """Every identity source these values configure, first the one used. RRSA counts only with all
    three of its values (role, OIDC provider, token file): the credentials chain needs all of them."""
    configured = {
        ACCESS_KEY: bool(access_key_id),
        RRSA: bool(role_arn and oidc_provider_arn and oidc_token_file),
        ECS_RAM_ROLE: bool(ecs_metadata),
        CREDENTIALS_URI: bool(credentials_uri),
    }
    return [source for source, present in configured.items() if present]
