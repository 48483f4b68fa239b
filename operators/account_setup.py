"""Reading the account's current state and applying `aliyun_setup`'s changes, through the seams.

The documents and the comparison are pure (``operators/provisioning.py``); this module only asks RAM
and OSS (``aliyun/ram.py``, ``aliyun/oss_admin.py``) with the administrator credential of one run.
"""

from collections.abc import Callable

from aliyun import oss_admin
from aliyun.ram import AdminCredentials, RamAdmin
from operators.provisioning import Change, CurrentState, SetupPlan, merged_cors, merged_lifecycle


def account_state_read(*, plan: SetupPlan, admin: AdminCredentials) -> CurrentState:
    """What the account holds now for everything ``plan`` names. Raises ``RamError`` / ``OssAdminError``."""
    ram = RamAdmin(admin)
    role = ram.role(plan.role_name)
    server = ram.role(plan.server_role.role_name) if plan.server_role else None
    keyless = plan.server_role is not None  # RRSA: the server is a role; no RAM user is read
    return CurrentState(
        user_exists=False if keyless else ram.user_exists(plan.ram_user),
        user_policies=set() if keyless else ram.user_policies(plan.ram_user),
        server_role_trust_policy=server.trust_policy if server else None,
        server_role_policies=ram.role_policies(plan.server_role.role_name) if server else set(),
        policy_documents={
            policy.name: ram.policy_document(policy.name)
            for policy in (*plan.user_policies, *plan.role_policies)
        },
        role_trust_policy=role.trust_policy if role else None,
        role_max_session_duration=role.max_session_duration if role else None,
        role_policies=ram.role_policies(plan.role_name) if role else set(),
        cors_rules=oss_admin.bucket_cors(admin),
        lifecycle_rules=oss_admin.bucket_lifecycle(admin),
        bucket_acl=oss_admin.bucket_acl(admin),
    )


def account_changes_apply(
    *,
    plan: SetupPlan,
    changes: list[Change],
    current: CurrentState,
    admin: AdminCredentials,
    progress: Callable[[Change], None] = lambda change: None,
    replace_origins: bool = False,
) -> None:
    """Make each change in order (users and policies before the attachments that name them).

    Stops at the first refusal (``RamError`` / ``OssAdminError``); running the command again
    continues from there, since every step is skipped once it holds. The bucket's CORS rules keep
    the origins already allowed unless ``replace_origins`` (``merged_cors``).
    """
    ram = RamAdmin(admin)
    policies = {policy.name: policy for policy in (*plan.user_policies, *plan.role_policies)}
    for change in changes:
        name = change.target.split(" ", 1)[1]
        if change.kind == "CreateUser":
            ram.create_user(plan.ram_user)
        elif change.kind == "CreatePolicy":
            policy = policies[name]
            ram.create_policy(policy.name, policy.description, policy.document)
        elif change.kind == "CreatePolicyVersion":
            ram.set_policy_document(name, policies[name].document)
        elif change.kind == "AttachPolicyToUser":
            ram.attach_policy_to_user(plan.ram_user, change.summary.removeprefix("attach "))
        elif change.kind == "CreateRole":
            ram.create_role(plan.role_name, plan.trust_policy, plan.max_session_duration)
        elif change.kind == "UpdateRole":
            if isinstance(change.after, dict):
                ram.update_role(plan.role_name, trust_policy=plan.trust_policy)
            else:
                ram.update_role(plan.role_name, max_session_duration=plan.max_session_duration)
        elif change.kind == "CreateServerRole":
            ram.create_role(plan.server_role.role_name, plan.server_role.trust_policy, 3600)
        elif change.kind == "UpdateServerRole":
            ram.update_role(plan.server_role.role_name, trust_policy=plan.server_role.trust_policy)
        elif change.kind == "AttachPolicyToServerRole":
            ram.attach_policy_to_role(plan.server_role.role_name, change.summary.removeprefix("attach "))
        elif change.kind == "AttachPolicyToRole":
            ram.attach_policy_to_role(plan.role_name, change.summary.removeprefix("attach "))
        elif change.kind == "PutBucketCors":
            oss_admin.set_bucket_cors(admin, merged_cors(plan, current.cors_rules, replace=replace_origins))
        elif change.kind == "PutBucketAcl":
            oss_admin.make_bucket_private(admin)
        elif change.kind == "PutBucketLifecycle":
            oss_admin.set_bucket_lifecycle(admin, merged_lifecycle(plan, current.lifecycle_rules))
        else:  # pragma: no cover - plan_changes makes only the kinds above
            raise ValueError(f"unknown change {change.kind}")
        progress(change)
