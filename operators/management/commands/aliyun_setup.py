"""`manage.py aliyun_setup`: the RAM and bucket set-up this product needs, printed or applied."""

import difflib
import json
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from aliyun import sts
from aliyun.oss_admin import OssAdminError
from aliyun.ram import RamError
from core.aliyun_names import ram_user_name
from operators.account_setup import account_changes_apply, account_state_read
from operators.management.commands._aliyun_admin import (
    ADMIN_KEY_ID,
    ADMIN_KEY_SECRET,
    admin_credentials,
    quiet_sdk_loggers,
    site_origins,
)
from operators.provisioning import (
    OIDC_AUDIENCE,
    Change,
    SetupInputs,
    SetupPlan,
    cli_commands,
    cors_xml,
    kept_origins,
    lifecycle_xml,
    oidc_provider_cli,
    plan_changes,
    plan_json,
    plan_warnings,
    setup_plan,
)


def _pretty(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


class Command(BaseCommand):
    help = (
        "Print the exact RAM policies, role trust policy, bucket CORS and lifecycle rules the current "
        "settings need (--json, --cli for aliyun CLI commands), or create/update them with --apply."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--origin",
            action="append",
            help="an origin browsers upload from (repeatable); default: DJANGO_CSRF_TRUSTED_ORIGINS "
            "and ALIYUN_OSS_APP_ORIGINS",
        )
        parser.add_argument(
            "--ram-user",
            help="the server's RAM user; default: the owner of ALIYUN_ACCESS_KEY_ID (STS GetCallerIdentity)",
        )
        output = parser.add_mutually_exclusive_group()
        output.add_argument(
            "--json", action="store_true", help="print the plan (or, with --apply, the changes) as JSON"
        )
        output.add_argument("--cli", action="store_true", help="print the set-up as aliyun CLI commands")
        parser.add_argument(
            "--apply",
            action="store_true",
            help=f"create or update everything, after showing the difference (needs {ADMIN_KEY_ID} and {ADMIN_KEY_SECRET})",
        )
        parser.add_argument("--yes", action="store_true", help="with --apply: do not ask for confirmation")
        parser.add_argument(
            "--oidc-issuer",
            help="RRSA (ALIBABA_CLOUD_ROLE_ARN and ALIBABA_CLOUD_OIDC_PROVIDER_ARN set): the OIDC provider's issuer "
            "URL, pinned in the server role's trust policy (ACK: https://oidc-ack-<region>.oss-<region>.aliyuncs.com/<cluster id>)",
        )
        parser.add_argument(
            "--service-account",
            default="default:uploads-server",
            help="RRSA: the pod's service account as NAMESPACE:NAME (default default:uploads-server)",
        )
        parser.add_argument(
            "--replace-origins",
            action="store_true",
            help="with --apply: the CORS rules allow only these origins (default: origins already allowed "
            "are kept, and the bucket's other CORS rules too)",
        )
        parser.add_argument(
            "--expire-uploads-days",
            type=int,
            default=7,
            help="lifecycle: delete objects under user/ after this many days; confirmed avatars live in avatars/ "
            "(0: no such rule)",
        )
        parser.add_argument(
            "--abort-multipart-days",
            type=int,
            default=1,
            help="lifecycle: abort unfinished multipart uploads after this many days",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with quiet_sdk_loggers():
            self._run(options)

    def _run(self, options: dict[str, Any]) -> None:
        plan = setup_plan(self._inputs(options))
        if not options["apply"]:
            if options["json"]:
                self.stdout.write(_pretty(plan_json(plan)))
            elif options["cli"]:
                self.stdout.write("\n".join(cli_commands(plan)))
            else:
                self._print_plan(plan)
            return
        self._apply(plan, options)

    # --- inputs ---------------------------------------------------------------------------------

    def _inputs(self, options: dict[str, Any]) -> SetupInputs:
        """The settings and flags the plan needs; every missing one is named in one error."""
        missing = [
            f"  {name}: {meaning}"
            for name, meaning in (
                ("ALIYUN_STS_ROLE_ARN", "the role tokens are minted from (acs:ram::<account>:role/<name>)"),
                ("ALIYUN_OSS_BUCKET", "the bucket clients upload to"),
            )
            if not getattr(settings, name)
        ]
        origins = site_origins(options["origin"])
        if not origins:
            missing.append(
                "  the origins that upload (the bucket's CORS rule): DJANGO_CSRF_TRUSTED_ORIGINS (the site's), "
                "ALIYUN_OSS_APP_ORIGINS (apps' web views), or --origin https://your.site (repeatable)"
            )
        rrsa_configured = not settings.ALIYUN_ACCESS_KEY_ID and bool(
            settings.ALIBABA_CLOUD_ROLE_ARN and settings.ALIBABA_CLOUD_OIDC_PROVIDER_ARN
        )
        if rrsa_configured and not options["oidc_issuer"]:
            missing.append(
                "  RRSA is configured (ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN): --oidc-issuer URL, "
                "the issuer of the cluster's OIDC provider (ACK console → cluster → Security → RRSA)"
            )
        if not rrsa_configured and not options["ram_user"] and not settings.ALIYUN_ACCESS_KEY_ID:
            missing.append(
                "  the server's RAM user: ALIYUN_ACCESS_KEY_ID (its key; the user is asked of STS) or --ram-user NAME"
            )
        if options["expire_uploads_days"] < 0 or options["abort_multipart_days"] < 1:
            missing.append("  --expire-uploads-days must be >= 0 and --abort-multipart-days >= 1")
        if missing:
            raise CommandError(
                "aliyun_setup needs:\n" + "\n".join(missing) + "\n(docs/operating/aliyun.md; "
                "against the local sandbox: make aliyun-setup)"
            )
        rrsa = self._rrsa(options)
        return SetupInputs(
            **rrsa,
            role_arn=settings.ALIYUN_STS_ROLE_ARN,
            bucket=settings.ALIYUN_OSS_BUCKET,
            region=settings.ALIYUN_OSS_REGION,
            ram_user="" if rrsa else options["ram_user"] or self._ram_user(),
            origins=tuple(origins),
            duration_seconds=settings.ALIYUN_STS_DURATION_SECONDS,
            abort_multipart_days=options["abort_multipart_days"],
            expire_uploads_days=options["expire_uploads_days"] or None,
            owner_account_id=settings.ALIYUN_OSS_OWNER_ACCOUNT_ID,
        )

    def _rrsa(self, options: dict[str, Any]) -> dict[str, str]:
        """Without an AccessKey and with RRSA configured, the server is ALIBABA_CLOUD_ROLE_ARN, trusted by
        ALIBABA_CLOUD_OIDC_PROVIDER_ARN for --service-account; {} otherwise (the RAM user set-up)."""
        if settings.ALIYUN_ACCESS_KEY_ID or not (
            settings.ALIBABA_CLOUD_ROLE_ARN and settings.ALIBABA_CLOUD_OIDC_PROVIDER_ARN
        ):
            return {}
        if not options["oidc_issuer"]:
            raise CommandError(
                "RRSA is configured (ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN): pass --oidc-issuer "
                "URL, the issuer of the cluster's OIDC provider (ACK console → cluster → Security → RRSA)."
            )
        namespace, _, name = options["service_account"].partition(":")
        if not namespace or not name:
            raise CommandError("--service-account must be NAMESPACE:NAME, e.g. default:uploads-server.")
        return {
            "server_role_arn": settings.ALIBABA_CLOUD_ROLE_ARN,
            "oidc_provider_arn": settings.ALIBABA_CLOUD_OIDC_PROVIDER_ARN,
            "oidc_issuer": options["oidc_issuer"],
            "service_account": f"system:serviceaccount:{namespace}:{name}",
        }

    def _ram_user(self) -> str:
        try:
            identity = sts.caller_identity()
        except sts.StsError as exc:
            raise CommandError(
                f"Could not ask STS who owns ALIYUN_ACCESS_KEY_ID ({exc.upstream_code or exc.code}); "
                "pass --ram-user NAME."
            ) from None
        name = ram_user_name(identity.arn)
        if name is None:
            raise CommandError(
                f"ALIYUN_ACCESS_KEY_ID belongs to {identity.arn}, not to a RAM user: STS refuses AssumeRole with "
                "a root-account key. Create a RAM user (pass --ram-user NAME) and give the server its key."
            )
        return name

    # --- printing -------------------------------------------------------------------------------

    def _print_plan(self, plan: SetupPlan) -> None:
        out = self.stdout.write
        out(f"Alibaba Cloud set-up for bucket {plan.bucket} ({plan.region}), account {plan.account_id}\n")
        server = plan.server_role
        if server is not None:
            out(
                f"0. OIDC provider {server.oidc_provider_arn} (issuer {server.oidc_issuer}, client id "
                f"{OIDC_AUDIENCE}). Printed only: it is an IMS API the RAM SDK lacks, and ACK creates it when "
                "RRSA is enabled on the cluster:\n   " + "\n   ".join(oidc_provider_cli(server))
            )
            out(
                f"\n1. RAM role {server.role_name} ({server.role_arn}): the server's own identity, no AccessKey "
                f"(RRSA).\n   trust policy (only {server.service_account}'s tokens from that provider):\n"
                f"{_pretty(server.trust_policy)}\n   and these custom policies"
            )
        else:
            out(
                f"1. RAM user {plan.ram_user} (the server's key, ALIYUN_ACCESS_KEY_ID): these custom policies"
            )
        for policy in plan.user_policies:
            out(f"\n   {policy.name}: {policy.description}\n{_pretty(policy.document)}")
        out(
            f"\n2. RAM role {plan.role_name} ({plan.role_arn}), MaxSessionDuration {plan.max_session_duration} s"
        )
        out(f"\n   trust policy (only {plan.server_principal} may assume it):\n{_pretty(plan.trust_policy)}")
        for policy in plan.role_policies:
            out(f"\n   {policy.name}: {policy.description}\n{_pretty(policy.document)}")
        out(f"\n3. Bucket {plan.bucket}: CORS rules (PutBucketCors)\n{cors_xml(plan.cors_rules)}")
        out(
            f"\n   lifecycle rules (PutBucketLifecycle; the bucket's other rules are kept)\n{lifecycle_xml(plan.lifecycle_rules)}"
        )
        out(
            "\n4. The bucket's ACL private (--apply sets it; also keep anonymous access out of any bucket policy).\n\n"
            f"Apply: {ADMIN_KEY_ID}=… {ADMIN_KEY_SECRET}=… python manage.py aliyun_setup --apply\n"
            "Or as aliyun CLI commands: python manage.py aliyun_setup --cli\n"
            "Then check it live: python manage.py aliyun_doctor"
        )
        self._print_events(plan)

    def _print_events(self, plan: SetupPlan) -> None:
        """OSS event notifications through Simple Message Queue (MNS): printed, not applied. The PyPI
        SDK for SMQ's OpenAPI (alibabacloud-mns-open20220119) is not a dependency: the local sandbox
        does not answer it, so nothing here could be tested against it."""
        topic = settings.OSS_EVENTS_TOPIC_NAME
        out = self.stdout.write
        out(
            f"\n5. OSS event notifications (the upload ledger and live quotas; console: Simple Message Queue "
            f"(formerly MNS), region {plan.region}):\n"
            f"   a. Topic {topic} (Topics > Create Topic).\n"
            f"   b. Subscription on {topic}: HTTP push to https://<your site>/api/uploads/oss-events/, "
            "NotifyContentFormat XML (SIMPLIFIED is refused: it carries no topic to check), NotifyStrategy "
            "EXPONENTIAL_DECAY_RETRY.\n"
            f"   c. Event rule (Event Notifications > Create Rule): bucket {plan.bucket}, prefix user/ and avatars/, "
            "events ObjectCreated:PutObject, PostObject, CopyObject, CompleteMultipartUpload, AppendObject, "
            f"ObjectRemoved:DeleteObject, DeleteObjects, delivered to topic {topic}.\n"
            "   The server then believes pushes signed by Alibaba's certificate (OSS_EVENTS_CERT_URL_PREFIXES) for "
            f"topic {topic} of account {plan.account_id}; run reconcile_upload_usage once after the rule exists.\n"
            "   aliyun CLI: aliyun mns-open CreateTopic --TopicName "
            + topic
            + " ; aliyun mns-open Subscribe "
            f"--TopicName {topic} --SubscriptionName uploads-server --Endpoint https://<your site>/api/uploads/oss-events/ "
            "--PushType http --NotifyContentFormat XML ; aliyun mns-open CreateEventRule (see the SMQ guide, "
            '"OSS event notifications")'
        )

    def _print_changes(self, changes: list[Change]) -> None:
        self.stdout.write(f"Changes to apply ({len(changes)}):")
        for change in changes:
            self.stdout.write(f"  {change.kind} {change.target}: {change.summary}")
            if change.after is None or isinstance(change.after, int | str):
                continue
            before = _pretty(change.before).splitlines() if change.before is not None else []
            after = _pretty(change.after).splitlines()
            for line in difflib.unified_diff(before, after, lineterm="", n=2):
                if not line.startswith(("---", "+++")):
                    self.stdout.write(f"      {line}")

    # --- applying -------------------------------------------------------------------------------

    def _apply(self, plan: SetupPlan, options: dict[str, Any]) -> None:
        admin = admin_credentials(sandbox_fallback=True)
        if admin is None:
            raise CommandError(
                f"--apply needs an administrator's AccessKey in {ADMIN_KEY_ID} and {ADMIN_KEY_SECRET} "
                "(RAM and bucket-configuration rights); it is used for this run only and never stored."
            )
        try:
            current = account_state_read(plan=plan, admin=admin)
            replace = options["replace_origins"]
            changes = plan_changes(plan, current, replace_origins=replace)
            warnings = plan_warnings(plan, current)
            kept = kept_origins(plan, current.cors_rules, replace=replace)
            if kept:
                warnings.append(
                    f"the bucket's CORS rules keep origins already allowed: {', '.join(kept)} "
                    "(--replace-origins allows only the ones above)"
                )
            if options["json"]:
                self.stdout.write(
                    _pretty(
                        {
                            "changes": [
                                {
                                    "kind": c.kind,
                                    "target": c.target,
                                    "summary": c.summary,
                                    "before": c.before,
                                    "after": c.after,
                                }
                                for c in changes
                            ],
                            "warnings": warnings,
                            "applied": bool(changes) and options["yes"],
                        }
                    )
                )
            for warning in warnings if not options["json"] else []:
                self.stdout.write(f"Note: {warning}")
            if not changes:
                if not options["json"]:
                    self.stdout.write(
                        f"Nothing to change: {plan.server_principal}, role {plan.role_name} and bucket "
                        f"{plan.bucket} already match the settings."
                    )
                return
            if options["json"] and not options["yes"]:
                return  # listed above; a machine applies with --yes
            if not options["json"]:
                self._print_changes(changes)
            if not options["yes"] and not self._confirm(len(changes)):
                self.stdout.write("Nothing applied.")
                return
            account_changes_apply(
                plan=plan,
                changes=changes,
                current=current,
                admin=admin,
                replace_origins=replace,
                progress=lambda change: (
                    None
                    if options["json"]
                    else self.stdout.write(self.style.SUCCESS(f"  done: {change.kind} {change.target}"))
                ),
            )
        except (RamError, OssAdminError) as exc:
            raise CommandError(
                f"{exc} — nothing after this step was applied; fix it and run again."
            ) from None
        if not options["json"]:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Applied {len(changes)} change(s). Now run: python manage.py aliyun_doctor"
                )
            )

    def _confirm(self, count: int) -> bool:
        if not sys.stdin.isatty():
            raise CommandError("Not a terminal: add --yes to apply without asking.")
        return input(f"Apply these {count} change(s)? [y/N] ").strip().lower() in ("y", "yes")
