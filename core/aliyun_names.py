"""Alibaba Cloud naming rules and the loopback test, shared by the settings checks, the STS seam and
the sandbox so that what the app accepts and what the sandbox accepts cannot drift apart."""

import re
from ipaddress import ip_address

# acs:ram::<account id>:role/<role name>; role names are 1-64 letters, digits, '.', '_' or '-'.
ROLE_ARN = re.compile(r"^acs:ram::\d+:role/[A-Za-z0-9._-]{1,64}$")
# 3-63 lower-case letters, digits and hyphens, starting and ending with a letter or digit.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
# RoleSessionName: 2-64 of A-Z a-z 0-9 . @ - _
ROLE_SESSION_NAME = re.compile(r"^[A-Za-z0-9.@_-]{2,64}$")
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
