"""What the Alibaba Cloud account must hold for this product: pure builders, no I/O.

`setup_plan()` turns the settings into the exact documents (RAM policies, the role's trust policy,
bucket CORS and lifecycle rules); `plan_changes()` compares them with what the account holds now
(read by the seams `aliyun/ram.py` and `aliyun/oss_admin.py`) and lists what `aliyun_setup
--apply` would change; `cli_commands()` says the same as `aliyun` CLI commands. The role's
permission policy and the probe's session policy are derived from `aliyun.policy.upload_policy`,
the session policy every token carries, so the role always allows what that policy needs.

Without an AccessKey (RRSA on ACK), the server is a RAM role of its own instead of a RAM user: that role
trusts the cluster's OIDC provider for the pod's service account (`Principal.Federated` with `StringEquals`
on `oidc:aud`, `oidc:iss`, `oidc:sub`: Alibaba's "Use RRSA to authorize different pods to access different
cloud services"), holds the policies the RAM user would hold, and the upload role trusts it
(`{"RAM": ["acs:ram::<account>:role/<server role>"]}`: role chaining).

Alibaba facts used (RAM and OSS API references): a RAM role's trust policy names its principals as
`{"RAM": ["acs:ram::<account>:user/<name>"]}`; `MaxSessionDuration` is 3600-43200 s (3600 for a
new role); a custom policy keeps at most 5 versions; a bucket holds at most 20 CORS rules and its
lifecycle configuration is replaced whole by PutBucketLifecycle.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from aliyun.oss_admin import (
    CorsRule,
    LifecycleRule,
)
from aliyun.policy import USER_ROOT, bucket_owner_account_id, upload_policy, user_prefix
from core.aliyun_names import role_arn_account_id, role_arn_name

# The doctor's probe user: 0 is never a real user's id (ids start at 1), so its folder is reserved.
PROBE_USER_PREFIX = f"{USER_ROOT}0/"
AVATAR_PREFIX = "avatars/"
ROLE_MIN_MAX_SESSION = 3600
LIFECYCLE_ABORT_ID = "uploads-abort-abandoned-multipart"
LIFECYCLE_EXPIRE_ID = "uploads-expire-unconfirmed"
_SAMPLE_USER = 1
OIDC_AUDIENCE = "sts.aliyuncs.com"  # what ACK's projected tokens carry as `aud` for STS


@dataclass(frozen=True)
class ManagedPolicy:
    """A custom RAM policy this command owns, by name."""

    name: str
    description: str
    document: dict[str, Any]


@dataclass(frozen=True)
class SetupInputs:
    """Everything the documents depend on, taken from the settings and the command's flags."""

    role_arn: str
    bucket: str
    region: str
    ram_user: str
    origins: tuple[str, ...]
    duration_seconds: int
    abort_multipart_days: int = 1
    expire_uploads_days: int | None = 7
    owner_account_id: str = ""  # the bucket owner's account (ALIYUN_OSS_OWNER_ACCOUNT_ID); empty: the role's
    # RRSA (ALIBABA_CLOUD_ROLE_ARN and ALIBABA_CLOUD_OIDC_PROVIDER_ARN set): the server is this role, not a user.
    server_role_arn: str = ""
    oidc_provider_arn: str = ""
    oidc_issuer: str = (
        ""  # the provider's issuer URL (ACK: https://oidc-ack-<region>.oss-<region>.aliyuncs.com/<cluster>)
    )
    service_account: str = ""  # system:serviceaccount:<namespace>:<name> of the pod


@dataclass(frozen=True)
class ServerRolePlan:
    """RRSA: the server's own role, assumed with the pod's OIDC token; it holds the server's policies."""

    role_name: str
    role_arn: str
    oidc_provider_arn: str
    oidc_issuer: str
    service_account: str
    trust_policy: dict[str, Any]


@dataclass(frozen=True)
class SetupPlan:
    """The desired state of the account."""

    account_id: str
    ram_user: str
    role_name: str
    role_arn: str
    max_session_duration: int
    trust_policy: dict[str, Any]
    user_policies: tuple[ManagedPolicy, ...]
    role_policies: tuple[ManagedPolicy, ...]
    bucket: str
    region: str
    cors_rules: tuple[CorsRule, ...]
    lifecycle_rules: tuple[LifecycleRule, ...]
    server_role: ServerRolePlan | None = None  # RRSA: the server's role instead of the RAM user

    @property
    def server_principal(self) -> str:
        """Who the server is, for messages: its RAM user, or its role."""
        return f"role {self.server_role.role_name}" if self.server_role else f"user {self.ram_user}"


@dataclass
class CurrentState:
    """What the account holds now, as the seams read it (None: the thing does not exist)."""

    user_exists: bool = False
    user_policies: set[tuple[str, str]] = field(default_factory=set)
    policy_documents: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    role_trust_policy: dict[str, Any] | None = None
    role_max_session_duration: int | None = None
    role_policies: set[tuple[str, str]] = field(default_factory=set)
    cors_rules: list[CorsRule] | None = None
    lifecycle_rules: list[LifecycleRule] | None = None
    bucket_acl: str | None = None  # private, public-read or public-read-write
    server_role_trust_policy: dict[str, Any] | None = None  # RRSA: the server role's, None if it is missing
    server_role_policies: set[tuple[str, str]] = field(default_factory=set)

    @property
    def role_exists(self) -> bool:
        return self.role_trust_policy is not None


@dataclass(frozen=True)
class Change:
    """One step of `--apply`: `kind` names the API call, `target` what it changes."""

    kind: str
    target: str
    summary: str
    before: Any = None
    after: Any = None


# --- names -----------------------------------------------------------------------------------


def _policy_name(role_name: str, suffix: str) -> str:
    """RAM policy names allow letters, digits and hyphens, up to 128 characters."""
    return f"{re.sub(r'[^A-Za-z0-9-]', '-', role_name)}-{suffix}"[:128]


# --- documents -------------------------------------------------------------------------------


def _retarget(policy: dict[str, Any], bucket: str, prefix: str) -> dict[str, Any]:
    """The session policy of the sample user, with its folder replaced by `prefix` everywhere."""
    sample = f"{bucket}/{user_prefix(_SAMPLE_USER)}"
    text = json.dumps(policy)
    if sample not in text:
        raise ValueError(f"the session policy does not name {sample!r}: cannot derive from it")
    return json.loads(text.replace(sample, f"{bucket}/{prefix}"))


def _sample_policy(*, bucket: str, region: str, owner: str) -> dict[str, Any]:
    return upload_policy(bucket=bucket, user_id=_SAMPLE_USER, region=region, owner_account_id=owner)


def session_policy(*, bucket: str, prefix: str, region: str, owner: str) -> dict[str, Any]:
    """The session policy a token for folder `prefix` carries (the product's, for another folder)."""
    return _retarget(_sample_policy(bucket=bucket, region=region, owner=owner), bucket, prefix)


def role_permission_policy(*, bucket: str, region: str, owner: str) -> dict[str, Any]:
    """The role's own policy: the session policy's statements widened from one user's folder to
    every user's (`user/*`), and nothing else (its Deny on keys with `:` included). The token gets
    the intersection of both."""
    return session_policy(bucket=bucket, prefix=USER_ROOT, region=region, owner=owner)


def _object_resource_bases(*, bucket: str, region: str, owner: str) -> list[str]:
    """`acs:oss:<region>:<account>:<bucket>/` exactly as the session policy's Allow writes its resources
    (one per spelling of the region it names)."""
    sample = f"{bucket}/{user_prefix(_SAMPLE_USER)}"
    bases: list[str] = []
    for statement in _sample_policy(bucket=bucket, region=region, owner=owner)["Statement"]:
        resources = statement.get("Resource", [])
        for resource in [resources] if isinstance(resources, str) else resources:
            if statement["Effect"] == "Allow" and sample in resource:
                bases.append(resource.split(sample, 1)[0] + f"{bucket}/")
    if not bases:
        raise ValueError("the session policy has no resource under a user's folder")
    return bases


def server_oss_policy(*, bucket: str, region: str, owner: str) -> dict[str, Any]:
    """The server's own key in OSS: read uploads and avatars (checks, ranged reads, signed GET URLs),
    write and delete confirmed avatars (the copy, and removing the replaced one), delete the
    doctor's probe objects, and list inside `user/` and `avatars/` (the quota's counts). No ACL change,
    no other bucket-wide action."""
    bases = _object_resource_bases(bucket=bucket, region=region, owner=owner)

    def under(*prefixes: str) -> list[str]:
        return [f"{base}{prefix}*" for prefix in prefixes for base in bases]

    return {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": under(USER_ROOT, AVATAR_PREFIX)},
            {
                "Effect": "Allow",
                "Action": ["oss:PutObject", "oss:DeleteObject"],
                "Resource": under(AVATAR_PREFIX),
            },
            {"Effect": "Allow", "Action": ["oss:DeleteObject"], "Resource": under(PROBE_USER_PREFIX)},
            {  # counting what a user's folders hold for the quota (reconcile_upload_usage)
                "Effect": "Allow",
                "Action": ["oss:ListObjects"],
                "Resource": [base.rstrip("/") for base in bases],
                "Condition": {"StringLike": {"oss:Prefix": [f"{USER_ROOT}*", f"{AVATAR_PREFIX}*"]}},
            },
        ],
    }


def assume_role_policy(*, role_arn: str) -> dict[str, Any]:
    """The RAM user's right to call AssumeRole on this one role (narrower than the system policy
    `AliyunSTSAssumeRoleAccess`, which allows every role of the account)."""
    return {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": [role_arn]}],
    }


def trust_policy(*, account_id: str, ram_user: str = "", server_role: str = "") -> dict[str, Any]:
    """The role trusts that one RAM user (or, without an AccessKey, the server's role), not the whole account."""
    principal = f"role/{server_role.lower()}" if server_role else f"user/{ram_user}"
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["sts:AssumeRole"],
                "Principal": {"RAM": [f"acs:ram::{account_id}:{principal}"]},
            }
        ],
    }


def rrsa_trust_policy(*, oidc_provider_arn: str, oidc_issuer: str, service_account: str) -> dict[str, Any]:
    """The server role's trust policy under RRSA: the cluster's OIDC provider, for one service account's
    tokens (Alibaba's RRSA guide: `Principal.Federated`, `StringEquals` on `oidc:aud`, `oidc:iss`, `oidc:sub`)."""
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Federated": [oidc_provider_arn]},
                "Condition": {
                    "StringEquals": {
                        "oidc:aud": OIDC_AUDIENCE,
                        "oidc:iss": oidc_issuer,
                        "oidc:sub": service_account,
                    }
                },
            }
        ],
    }


def setup_plan(inputs: SetupInputs) -> SetupPlan:
    """The desired state for these settings."""
    account_id = role_arn_account_id(inputs.role_arn)
    role_name = role_arn_name(inputs.role_arn)
    where = {
        "region": inputs.region,
        "owner": bucket_owner_account_id(role_arn=inputs.role_arn, override=inputs.owner_account_id),
    }
    server_role = None
    if inputs.server_role_arn:
        server_role = ServerRolePlan(
            role_name=role_arn_name(inputs.server_role_arn),
            role_arn=inputs.server_role_arn,
            oidc_provider_arn=inputs.oidc_provider_arn,
            oidc_issuer=inputs.oidc_issuer,
            service_account=inputs.service_account,
            trust_policy=rrsa_trust_policy(
                oidc_provider_arn=inputs.oidc_provider_arn,
                oidc_issuer=inputs.oidc_issuer,
                service_account=inputs.service_account,
            ),
        )
    lifecycle = [LifecycleRule(LIFECYCLE_ABORT_ID, "", abort_multipart_days=inputs.abort_multipart_days)]
    if inputs.expire_uploads_days:
        lifecycle.append(
            LifecycleRule(LIFECYCLE_EXPIRE_ID, USER_ROOT, expiration_days=inputs.expire_uploads_days)
        )
    return SetupPlan(
        account_id=account_id,
        ram_user=inputs.ram_user,
        role_name=role_name,
        role_arn=inputs.role_arn,
        max_session_duration=max(ROLE_MIN_MAX_SESSION, inputs.duration_seconds),
        trust_policy=trust_policy(
            account_id=account_id,
            ram_user=inputs.ram_user,
            server_role=server_role.role_name if server_role else "",
        ),
        user_policies=(
            ManagedPolicy(
                _policy_name(role_name, "assume-role"),
                f"May call sts:AssumeRole on {role_name} only (uploads server)",
                assume_role_policy(role_arn=inputs.role_arn),
            ),
            ManagedPolicy(
                _policy_name(role_name, "server-oss"),
                f"The uploads server's own access to {inputs.bucket} (avatar checks and copies)",
                server_oss_policy(bucket=inputs.bucket, **where),
            ),
        ),
        role_policies=(
            ManagedPolicy(
                _policy_name(role_name, "permissions"),
                f"What user upload tokens may do in {inputs.bucket}/{USER_ROOT}",
                role_permission_policy(bucket=inputs.bucket, **where),
            ),
        ),
        bucket=inputs.bucket,
        region=inputs.region,
        cors_rules=(CorsRule(tuple(inputs.origins)),),
        lifecycle_rules=tuple(lifecycle),
        server_role=server_role,
    )


# --- differences -----------------------------------------------------------------------------


def _same_document(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    return a is not None and b is not None and _canonical(a) == _canonical(b)


def _canonical(document: Any) -> Any:
    """RAM accepts a string where a one-item list is meant; compare them as equal."""
    if isinstance(document, dict):
        return {
            k: _canonical([v] if k in ("Action", "Resource") and isinstance(v, str) else v)
            for k, v in document.items()
        }
    if isinstance(document, list):
        return [_canonical(item) for item in document]
    return document


def _trust_includes(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """The trust policy names exactly the wanted principals for sts:AssumeRole, and no one else."""

    def principals(document: dict[str, Any]) -> set[str]:
        found: set[str] = set()
        for statement in document.get("Statement", []):
            if statement.get("Effect") != "Allow":
                continue
            ram = (statement.get("Principal") or {}).get("RAM", [])
            found.update([ram] if isinstance(ram, str) else ram)
        return found

    return principals(current) == principals(wanted)


def merged_lifecycle(plan: SetupPlan, current: list[LifecycleRule] | None) -> list[LifecycleRule]:
    """PutBucketLifecycle replaces every rule: keep the bucket's other rules, replace ours by id."""
    ours = {rule.rule_id for rule in plan.lifecycle_rules}
    kept = [rule for rule in current or [] if rule.rule_id not in ours]
    return [*kept, *plan.lifecycle_rules]


def _same_shape(a: CorsRule, b: CorsRule) -> bool:
    """The same rule but for its origins: methods, headers, exposed headers and max age."""
    return a.normalized()[1:] == b.normalized()[1:]


def merged_cors(plan: SetupPlan, current: list[CorsRule] | None, *, replace: bool = False) -> list[CorsRule]:
    """PutBucketCors replaces every rule. Unless `replace`, nothing already allowed is taken away:
    our rule also keeps the origins of any rule of the same shape (ours, from an earlier run, with
    other origins), and the bucket's other rules are kept whole after it (OSS uses the first rule
    that matches, so ours, which exposes ETag, comes first). A bucket holds at most 20 rules."""
    if replace or not current:
        return list(plan.cors_rules)
    ours = plan.cors_rules[0]
    origins = list(ours.allowed_origins)
    others = []
    for rule in current:
        if _same_shape(rule, ours):
            origins += [origin for origin in rule.allowed_origins if origin not in origins]
        else:
            others.append(rule)
    return [dataclasses.replace(ours, allowed_origins=tuple(origins)), *plan.cors_rules[1:], *others]


def kept_origins(plan: SetupPlan, current: list[CorsRule] | None, *, replace: bool = False) -> list[str]:
    """Origins the bucket allows now that the plan does not name and `--apply` keeps."""
    wanted = {origin for rule in plan.cors_rules for origin in rule.allowed_origins}
    return [
        origin
        for rule in merged_cors(plan, current, replace=replace)
        for origin in rule.allowed_origins
        if origin not in wanted
    ]


def plan_changes(plan: SetupPlan, current: CurrentState, *, replace_origins: bool = False) -> list[Change]:
    """The ordered calls that bring `current` to `plan`; empty when nothing needs to change.
    The CORS rules are compared as `merged_cors` would write them (`replace_origins`: the plan's only)."""
    changes: list[Change] = []
    if plan.server_role is None and not current.user_exists:
        changes.append(Change("CreateUser", f"user {plan.ram_user}", "create the server's RAM user"))
    for policy in (*plan.user_policies, *plan.role_policies):
        existing = current.policy_documents.get(policy.name)
        if existing is None:
            changes.append(
                Change("CreatePolicy", f"policy {policy.name}", policy.description, None, policy.document)
            )
        elif not _same_document(existing, policy.document):
            changes.append(
                Change(
                    "CreatePolicyVersion",
                    f"policy {policy.name}",
                    "a new default version",
                    existing,
                    policy.document,
                )
            )
    if plan.server_role is not None:
        changes.extend(_server_role_changes(plan, plan.server_role, current))
    else:
        for policy in plan.user_policies:
            if ("Custom", policy.name) not in current.user_policies:
                changes.append(Change("AttachPolicyToUser", f"user {plan.ram_user}", f"attach {policy.name}"))
    if not current.role_exists:
        changes.append(
            Change(
                "CreateRole",
                f"role {plan.role_name}",
                f"trusting {plan.server_principal}, MaxSessionDuration {plan.max_session_duration} s",
                None,
                plan.trust_policy,
            )
        )
    else:
        if not _trust_includes(current.role_trust_policy or {}, plan.trust_policy):
            changes.append(
                Change(
                    "UpdateRole",
                    f"role {plan.role_name}",
                    f"trust only {plan.server_principal}",
                    current.role_trust_policy,
                    plan.trust_policy,
                )
            )
        if (current.role_max_session_duration or 0) < plan.max_session_duration:
            changes.append(
                Change(
                    "UpdateRole",
                    f"role {plan.role_name}",
                    f"MaxSessionDuration {current.role_max_session_duration} → {plan.max_session_duration} s",
                    current.role_max_session_duration,
                    plan.max_session_duration,
                )
            )
    for policy in plan.role_policies:
        if ("Custom", policy.name) not in current.role_policies:
            changes.append(Change("AttachPolicyToRole", f"role {plan.role_name}", f"attach {policy.name}"))
    current_cors = [rule.normalized() for rule in current.cors_rules or []]
    wanted_cors = merged_cors(plan, current.cors_rules, replace=replace_origins)
    if current.cors_rules is None or current_cors != [rule.normalized() for rule in wanted_cors]:
        changes.append(
            Change(
                "PutBucketCors",
                f"bucket {plan.bucket}",
                "replace the CORS rules"
                if replace_origins or not current.cors_rules
                else "set the CORS rules (origins already allowed are kept)",
                [cors_rule_json(rule) for rule in current.cors_rules or []],
                [cors_rule_json(rule) for rule in wanted_cors],
            )
        )
    if current.bucket_acl not in (None, "private"):
        changes.append(
            Change(
                "PutBucketAcl",
                f"bucket {plan.bucket}",
                f"make the bucket private (it is {current.bucket_acl})",
                current.bucket_acl,
                "private",
            )
        )
    wanted_lifecycle = merged_lifecycle(plan, current.lifecycle_rules)
    if current.lifecycle_rules is None or current.lifecycle_rules != wanted_lifecycle:
        changes.append(
            Change(
                "PutBucketLifecycle",
                f"bucket {plan.bucket}",
                "set the lifecycle rules (the bucket's other rules are kept)",
                [lifecycle_rule_json(rule) for rule in current.lifecycle_rules or []],
                [lifecycle_rule_json(rule) for rule in wanted_lifecycle],
            )
        )
    return changes


def _server_role_changes(plan: SetupPlan, server: ServerRolePlan, current: CurrentState) -> list[Change]:
    """RRSA: the server's role exists, trusts the OIDC provider for the service account, holds the
    server's policies (after they are created: plan_changes lists those first)."""
    changes: list[Change] = []
    target = f"role {server.role_name}"
    if current.server_role_trust_policy is None:
        changes.append(
            Change(
                "CreateServerRole",
                target,
                f"the server's own role, trusting {server.oidc_provider_arn} for {server.service_account}",
                None,
                server.trust_policy,
            )
        )
    elif not _same_document(current.server_role_trust_policy, server.trust_policy):
        changes.append(
            Change(
                "UpdateServerRole",
                target,
                f"trust only {server.oidc_provider_arn} for {server.service_account}",
                current.server_role_trust_policy,
                server.trust_policy,
            )
        )
    for policy in plan.user_policies:
        if ("Custom", policy.name) not in current.server_role_policies:
            changes.append(Change("AttachPolicyToServerRole", target, f"attach {policy.name}"))
    return changes


def plan_warnings(plan: SetupPlan, current: CurrentState) -> list[str]:
    """Things `--apply` leaves alone but an operator should know."""
    ours = {("Custom", policy.name) for policy in plan.user_policies}
    extra = sorted(name for kind, name in current.user_policies - ours)
    warnings = []
    if extra and plan.server_role is None:
        warnings.append(
            f"user {plan.ram_user} also has {', '.join(extra)} attached; the server needs only the "
            "policies above (detach the others if nothing else uses this user)"
        )
    role_ours = {("Custom", policy.name) for policy in plan.role_policies}
    role_extra = sorted(name for kind, name in current.role_policies - role_ours)
    if role_extra:
        warnings.append(
            f"role {plan.role_name} also has {', '.join(role_extra)} attached; tokens still get only "
            "the intersection with the session policy, but the role allows more than it needs"
        )
    return warnings


# --- renderings ------------------------------------------------------------------------------


def cors_rule_json(rule: CorsRule) -> dict[str, Any]:
    return {
        "AllowedOrigin": list(rule.allowed_origins),
        "AllowedMethod": list(rule.allowed_methods),
        "AllowedHeader": list(rule.allowed_headers),
        "ExposeHeader": list(rule.expose_headers),
        "MaxAgeSeconds": rule.max_age_seconds,
    }


def lifecycle_rule_json(rule: LifecycleRule) -> dict[str, Any]:
    document: dict[str, Any] = {"ID": rule.rule_id, "Prefix": rule.prefix, "Status": rule.status}
    if rule.expiration_days is not None:
        document["Expiration"] = {"Days": rule.expiration_days}
    if rule.abort_multipart_days is not None:
        document["AbortMultipartUpload"] = {"Days": rule.abort_multipart_days}
    return document


def plan_json(plan: SetupPlan) -> dict[str, Any]:
    """The plan for machines (`aliyun_setup --json`)."""
    server = plan.server_role
    rrsa = (
        {
            "serverRole": {
                "name": server.role_name,
                "arn": server.role_arn,
                "trustPolicy": server.trust_policy,
                "policies": [p.name for p in plan.user_policies],
            },
            "oidcProvider": {
                "arn": server.oidc_provider_arn,
                "issuerUrl": server.oidc_issuer,
                "clientIds": [OIDC_AUDIENCE],
                "applied": False,  # an IMS API: printed, never applied (oidc_provider_cli)
            },
        }
        if server
        else {}
    )
    return {
        **rrsa,
        "accountId": plan.account_id,
        "ramUser": {
            "name": plan.ram_user,
            "policies": [
                {"name": p.name, "description": p.description, "document": p.document}
                for p in plan.user_policies
            ],
        },
        "role": {
            "name": plan.role_name,
            "arn": plan.role_arn,
            "maxSessionDuration": plan.max_session_duration,
            "trustPolicy": plan.trust_policy,
            "policies": [
                {"name": p.name, "description": p.description, "document": p.document}
                for p in plan.role_policies
            ],
        },
        "bucket": {
            "name": plan.bucket,
            "region": plan.region,
            "cors": [cors_rule_json(rule) for rule in plan.cors_rules],
            "lifecycle": [lifecycle_rule_json(rule) for rule in plan.lifecycle_rules],
            "acl": "private",
        },
    }


def cors_xml(rules: tuple[CorsRule, ...] | list[CorsRule]) -> str:
    """The PutBucketCors body."""
    parts = ["<CORSConfiguration>"]
    for rule in rules:
        parts.append("  <CORSRule>")
        for tag, values in (
            ("AllowedOrigin", rule.allowed_origins),
            ("AllowedMethod", rule.allowed_methods),
            ("AllowedHeader", rule.allowed_headers),
            ("ExposeHeader", rule.expose_headers),
        ):
            parts.extend(f"    <{tag}>{escape(value)}</{tag}>" for value in values)
        if rule.max_age_seconds is not None:
            parts.append(f"    <MaxAgeSeconds>{rule.max_age_seconds}</MaxAgeSeconds>")
        parts.append("  </CORSRule>")
    parts.append("</CORSConfiguration>")
    return "\n".join(parts)


def lifecycle_xml(rules: tuple[LifecycleRule, ...] | list[LifecycleRule]) -> str:
    """The PutBucketLifecycle body."""
    parts = ["<LifecycleConfiguration>"]
    for rule in rules:
        parts += [
            "  <Rule>",
            f"    <ID>{escape(rule.rule_id)}</ID>",
            f"    <Prefix>{escape(rule.prefix)}</Prefix>",
            f"    <Status>{rule.status}</Status>",
        ]
        if rule.expiration_days is not None:
            parts.append(f"    <Expiration><Days>{rule.expiration_days}</Days></Expiration>")
        if rule.abort_multipart_days is not None:
            parts.append(
                f"    <AbortMultipartUpload><Days>{rule.abort_multipart_days}</Days></AbortMultipartUpload>"
            )
        parts.append("  </Rule>")
    parts.append("</LifecycleConfiguration>")
    return "\n".join(parts)


def _compact(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"))


def cli_commands(plan: SetupPlan) -> list[str]:
    """The same set-up as `aliyun` CLI commands, for people (each Create… fails harmlessly if the
    thing exists; then run the Update/CreatePolicyVersion line shown after it)."""
    q = shlex.quote
    if plan.server_role is not None:
        lines = rrsa_cli_commands(plan, plan.server_role)
    else:
        lines = [
            f"# RAM user for the server (then create its AccessKey: aliyun ram CreateAccessKey --UserName {q(plan.ram_user)})",
            f"aliyun ram CreateUser --UserName {q(plan.ram_user)}",
        ]
        for policy in plan.user_policies:
            lines += [
                f"aliyun ram CreatePolicy --PolicyName {q(policy.name)} --Description {q(policy.description)} "
                f"--PolicyDocument {q(_compact(policy.document))}",
                f"aliyun ram AttachPolicyToUser --PolicyType Custom --PolicyName {q(policy.name)} "
                f"--UserName {q(plan.ram_user)}",
            ]
    lines += [
        f"# The role the tokens are minted from, trusting the server's {plan.server_principal} only",
        f"aliyun ram CreateRole --RoleName {q(plan.role_name)} --AssumeRolePolicyDocument "
        f"{q(_compact(plan.trust_policy))} --MaxSessionDuration {plan.max_session_duration}",
        "# (if the role exists:)",
        f"aliyun ram UpdateRole --RoleName {q(plan.role_name)} --NewAssumeRolePolicyDocument "
        f"{q(_compact(plan.trust_policy))} --NewMaxSessionDuration {plan.max_session_duration}",
    ]
    for policy in plan.role_policies:
        lines += [
            f"aliyun ram CreatePolicy --PolicyName {q(policy.name)} --Description {q(policy.description)} "
            f"--PolicyDocument {q(_compact(policy.document))}",
            f"aliyun ram AttachPolicyToRole --PolicyType Custom --PolicyName {q(policy.name)} "
            f"--RoleName {q(plan.role_name)}",
        ]
    lines += [
        "# (a policy that exists gets a new default version instead:)",
        *(
            f"aliyun ram CreatePolicyVersion --PolicyName {q(p.name)} --SetAsDefault true "
            f"--RotateStrategy DeleteOldestNonDefaultVersionWhenLimitExceeded --PolicyDocument {q(_compact(p.document))}"
            for p in (*plan.user_policies, *plan.role_policies)
        ),
        "# Bucket CORS (replaces the bucket's CORS rules) and lifecycle (replaces its lifecycle rules)",
        f"cat > cors.xml <<'XML'\n{cors_xml(plan.cors_rules)}\nXML",
        f"aliyun oss cors --method put oss://{plan.bucket} cors.xml",
        f"cat > lifecycle.xml <<'XML'\n{lifecycle_xml(plan.lifecycle_rules)}\nXML",
        f"aliyun oss lifecycle --method put oss://{plan.bucket} lifecycle.xml",
        "# Keep the bucket private",
        f"aliyun oss set-acl oss://{plan.bucket} private -b",
    ]
    return lines


def oidc_provider_cli(server: ServerRolePlan) -> list[str]:
    """The OIDC provider RRSA needs. It is an IMS API (CreateOIDCProvider), which the RAM SDK this product
    uses lacks, so `aliyun_setup` prints it and never applies it. On ACK, enabling RRSA on the cluster
    creates it (`ack-rrsa-<cluster id>`): check it exists rather than create it."""
    q = shlex.quote
    name = server.oidc_provider_arn.rpartition(":oidc-provider/")[2]
    return [
        "# The cluster's OIDC provider (ACK creates it when RRSA is enabled; printed only, never applied:",
        "# the thumbprint is that of the issuer's HTTPS certificate, shown in the RAM console)",
        f"aliyun ims GetOIDCProvider --OIDCProviderName {q(name)}",
        f"aliyun ims CreateOIDCProvider --OIDCProviderName {q(name)} --IssuerUrl {q(server.oidc_issuer)} "
        f"--ClientIds {OIDC_AUDIENCE} --Fingerprints <issuer certificate SHA-1 thumbprint>",
    ]


def rrsa_cli_commands(plan: SetupPlan, server: ServerRolePlan) -> list[str]:
    """RRSA's part of `cli_commands`: the OIDC provider (print only), the server's role and its policies."""
    q = shlex.quote
    lines = oidc_provider_cli(server)
    lines += [
        f"# The server's own role, assumed by the pod's service account {server.service_account}",
        f"aliyun ram CreateRole --RoleName {q(server.role_name)} --AssumeRolePolicyDocument "
        f"{q(_compact(server.trust_policy))} --MaxSessionDuration {ROLE_MIN_MAX_SESSION}",
    ]
    for policy in plan.user_policies:
        lines += [
            f"aliyun ram CreatePolicy --PolicyName {q(policy.name)} --Description {q(policy.description)} "
            f"--PolicyDocument {q(_compact(policy.document))}",
            f"aliyun ram AttachPolicyToRole --PolicyType Custom --PolicyName {q(policy.name)} "
            f"--RoleName {q(server.role_name)}",
        ]
    return lines
