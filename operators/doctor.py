"""``aliyun_doctor``: the live configuration checked the way the first real upload would use it.

Each check gives a ``DoctorCheck`` (✓ or ✗, what was seen and, for a ✗, what to change). The checks
call Alibaba Cloud (or the sandbox) through the project's seams: STS AssumeRole with the configured
role and duration, a probe upload with the minted credentials under the reserved folder
``user/0/`` (0 is never a user id), a CORS preflight from the site's origin, the ``Date`` headers
of STS and OSS against our clock, and anonymous reads that a private bucket refuses.

Alibaba facts (aliyun-facts.md): STS refuses a timestamp more than 15 minutes off
(``InvalidTimeStamp.Expired``) and OSS a request more than 15 minutes off (``RequestTimeTooSkewed``);
``DurationSeconds`` above the role's MaxSessionDuration is ``InvalidParameter.DurationSeconds``;
browsers need ``ETag`` in ``Access-Control-Expose-Headers`` for multipart uploads.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from django.conf import settings
from django.db import DatabaseError

from aliyun import credentials, oss, oss_admin, sts
from aliyun.policy import bucket_owner_account_id
from aliyun.ram import AdminCredentials, RamAdmin, RamError
from core.aliyun_names import endpoint_protocol, role_arn_name
from ledger.selectors import probe_event_received_at
from operators.provisioning import PROBE_USER_PREFIX, session_policy

# Well inside the 15 minutes STS and OSS tolerate; an NTP-synced server is within a second.
MAX_CLOCK_SKEW_SECONDS = 60
# What ali-oss asks for in a preflight (V4 adds x-oss-content-sha256).
BROWSER_REQUEST_HEADERS = (
    "authorization,content-type,x-oss-content-sha256,x-oss-date,x-oss-security-token,x-oss-user-agent"
)
HTTP_TIMEOUT = 10
SETUP = "python manage.py aliyun_setup --apply"


@dataclass(frozen=True)
class DoctorCheck:
    id: str
    title: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class DoctorInputs:
    """``origins``: every origin that uploads (the site's, then apps' web views); the probe upload is
    sent from the first, and each gets its own CORS check."""

    origins: tuple[str, ...]
    admin: AdminCredentials | None = None


def _sts_fix(error: sts.StsError) -> str:
    """What to change for each refusal of AssumeRole."""
    code = error.upstream_code
    duration = settings.ALIYUN_STS_DURATION_SECONDS
    if code == "NoPermission" and settings.ALIYUN_ACCESS_KEY_ID == "":
        return (
            "The server's role may not assume the upload role: its policy needs sts:AssumeRole on "
            f"{settings.ALIYUN_STS_ROLE_ARN}, and that role's trust policy must name the server's role "
            f'("RAM": ["acs:ram::<account>:role/<server role>"]) ({SETUP} prints both).'
        )
    if code == "NoPermission":
        return (
            "The RAM user of ALIYUN_ACCESS_KEY_ID may not assume the role: give it sts:AssumeRole on "
            f"{settings.ALIYUN_STS_ROLE_ARN} and name it in the role's trust policy ({SETUP}); "
            "a root-account AccessKey is always refused: use a RAM user's."
        )
    if code == "EntityNotExist.Role":
        return (
            f"ALIYUN_STS_ROLE_ARN={settings.ALIYUN_STS_ROLE_ARN} names no role of that account: copy the "
            f"ARN from the role's page in the RAM console, or create the role ({SETUP})."
        )
    if code == "InvalidParameter.DurationSeconds":
        return (
            f"ALIYUN_STS_DURATION_SECONDS={duration} is above the role's MaxSessionDuration: lower it, or "
            f"raise the role's maximum to {duration} ({SETUP} does, or RAM console → role → edit)."
        )
    if code in ("InvalidAccessKeyId.NotFound", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return "ALIYUN_ACCESS_KEY_ID / ALIYUN_ACCESS_KEY_SECRET are not a valid AccessKey pair: check both."
    if code == "InvalidTimeStamp.Expired":
        return "This server's clock is more than 15 minutes off: synchronise it (NTP, e.g. chrony or systemd-timesyncd)."
    if error.code == "sts_unavailable":
        return f"STS did not answer at ALIYUN_STS_ENDPOINT={settings.ALIYUN_STS_ENDPOINT}: check the endpoint and the network."
    return f"STS refused with {code or error.code}: see the RAM and STS error reference."


def _sts_url() -> str:
    endpoint = settings.ALIYUN_STS_ENDPOINT
    return f"{endpoint_protocol(endpoint)}://{endpoint}/"


def _skew(url: str) -> float:
    """Seconds the server at ``url`` is ahead of us, from its ``Date`` header (any answer has one)."""
    before = datetime.now(UTC)
    answer = requests.get(url, timeout=HTTP_TIMEOUT)
    after = datetime.now(UTC)
    date = answer.headers.get("Date")
    if not date:
        raise ValueError(f"{url} sent no Date header")
    theirs = parsedate_to_datetime(date)
    if theirs.tzinfo is None:  # "-0000" and some "GMT" forms parse without a zone: they are UTC
        theirs = theirs.replace(tzinfo=UTC)
    theirs += timedelta(seconds=0.5)  # the header is cut to the second: its middle is the best guess
    ours = before + (after - before) / 2
    return (theirs - ours).total_seconds()


def check_clock() -> DoctorCheck:
    title = "Clock agrees with STS and OSS"
    try:
        skews = {"STS": _skew(_sts_url()), "OSS": _skew(oss.object_url(""))}
    except (requests.RequestException, ValueError) as exc:
        return DoctorCheck(
            "clock",
            title,
            False,
            f"could not read a Date header: {type(exc).__name__}",
            "Check ALIYUN_STS_ENDPOINT and ALIYUN_OSS_ENDPOINT and the network.",
        )
    worst = max(skews.values(), key=abs)
    detail = ", ".join(f"{name} {value:+.0f} s" for name, value in skews.items())
    if abs(worst) > MAX_CLOCK_SKEW_SECONDS:
        direction = "behind" if worst > 0 else "ahead of"
        return DoctorCheck(
            "clock",
            title,
            False,
            f"this server is {abs(worst):.0f} s {direction} Alibaba Cloud ({detail})",
            "Synchronise this server's clock (NTP: chrony or systemd-timesyncd). Beyond 15 minutes STS and OSS "
            "refuse every signed request; before that, token lifetimes and expirations are off by as much.",
        )
    return DoctorCheck("clock", title, True, f"within {MAX_CLOCK_SKEW_SECONDS} s ({detail})")


_IDENTITY_FIXES = {
    "rrsa": "AssumeRoleWithOIDC failed: the role's trust policy must name the OIDC provider with the pod's "
    "service account (python manage.py aliyun_setup prints it), the token file must be readable, and STS must "
    "be reachable over HTTPS at ALIYUN_STS_HTTPS_ENDPOINT (or ALIYUN_STS_ENDPOINT), trusted by this machine.",
    "ecs_ram_role": "Attach the RAM role named in ALIBABA_CLOUD_ECS_METADATA to this ECS instance (ECS console → "
    "instance → Attach/Detach RAM Role); the metadata service answers only on the instance.",
    "credentials_uri": "The credentials URI did not answer {Code: Success, AccessKeyId, ...}: is the sidecar running?",
    "access_key": "Set both ALIYUN_ACCESS_KEY_ID and ALIYUN_ACCESS_KEY_SECRET, or neither and a provider.",
}


def check_identity() -> DoctorCheck:
    """Which source the server's identity comes from, whose it is (STS GetCallerIdentity) and when its
    credentials expire (temporary ones are renewed 15 minutes before)."""
    title = "The server's own identity"
    try:
        identity = credentials.server_identity()
    except credentials.ServerIdentityError as exc:
        return DoctorCheck("identity", title, False, str(exc), _IDENTITY_FIXES["access_key"])
    try:
        current = credentials.server_credentials()
        who = sts.caller_identity()
    except credentials.ServerIdentityError as exc:
        return DoctorCheck("identity", title, False, f"{exc.source}: {exc}", _IDENTITY_FIXES[identity.kind])
    except sts.StsError as exc:
        return DoctorCheck(
            "identity",
            title,
            False,
            f"{identity.description}: STS GetCallerIdentity failed ({exc.upstream_code or exc.code})",
            _IDENTITY_FIXES[identity.kind] if exc.upstream_code == "server_identity" else _sts_fix(exc),
        )
    if current.expiration is None:
        lifetime = "a long-term key that does not expire (docs/operating/keyless.md)"
    else:
        left = int((current.expiration - datetime.now(UTC)).total_seconds() // 60)
        lifetime = (
            f"credentials {current.access_key_id} expire at {current.expiration:%Y-%m-%dT%H:%M:%SZ} "
            f"(in {left} min; renewed 15 min before)"
        )
    detail = f"{identity.description}, acting as {who.arn} ({who.identity_type}); {lifetime}"
    return DoctorCheck("identity", title, True, detail)


def run_checks(inputs: DoctorInputs) -> list[DoctorCheck]:
    """All checks, in the order an upload needs them; later ones say when an earlier failure stops them."""
    results: list[DoctorCheck] = []
    duration = settings.ALIYUN_STS_DURATION_SECONDS
    probe_key = f"{PROBE_USER_PREFIX}aliyun-doctor-{uuid.uuid4().hex}.txt"

    credentials = None
    try:
        minted = sts.assume_role(
            role_session_name="aliyun-doctor",
            policy=session_policy(
                bucket=settings.ALIYUN_OSS_BUCKET,
                prefix=PROBE_USER_PREFIX,
                region=settings.ALIYUN_OSS_REGION,
                owner=bucket_owner_account_id(
                    role_arn=settings.ALIYUN_STS_ROLE_ARN, override=settings.ALIYUN_OSS_OWNER_ACCOUNT_ID
                ),
            ),
            duration_seconds=duration,
        )
        credentials = oss_admin.TemporaryCredentials(
            minted.access_key_id, minted.access_key_secret, minted.security_token
        )
        results.append(
            DoctorCheck(
                "sts",
                "STS AssumeRole works",
                True,
                f"{settings.ALIYUN_STS_ROLE_ARN} gave {duration} s credentials (request {minted.request_id})",
            )
        )
    except sts.StsError as exc:
        results.append(
            DoctorCheck(
                "sts",
                "STS AssumeRole works",
                False,
                f"{exc.upstream_code or exc.code}: {exc}",
                _sts_fix(exc),
            )
        )

    results.append(_check_max_session(inputs, results[0], duration))
    probe_written_at = datetime.now(UTC)
    results.extend(_check_probe_and_cors(inputs, credentials, probe_key))
    if settings.OSS_EVENTS_DOCTOR_WAIT_SECONDS > 0:  # 0: events are not set up here, skip the check
        uploaded = next((check.ok for check in results if check.id == "upload"), False)
        results.append(check_probe_event(probe_key, written_at=probe_written_at, uploaded=uploaded))
    results.append(check_clock())
    results.insert(0, check_identity())  # first in the output; results[0] above is the STS check
    return results


def check_probe_event(key: str, *, written_at: datetime, uploaded: bool) -> DoctorCheck:
    """Whether OSS's event for the probe upload reached this deployment's receiver (the ledger records
    probe events, which count towards no user), and how long after the upload it arrived."""
    title = "The probe's OSS event reached POST /api/uploads/oss-events/"
    if not uploaded:
        return DoctorCheck(
            "event", title, False, "not checked: the probe upload failed", "Fix the upload check first."
        )
    wait = settings.OSS_EVENTS_DOCTOR_WAIT_SECONDS
    deadline = time.monotonic() + wait
    while True:
        try:
            received = probe_event_received_at(key)
        except DatabaseError:
            return DoctorCheck(
                "event",
                title,
                False,
                "not checked: the database the receiver writes to cannot be read here",
                "Run the doctor with the web app's DATABASE_URL, after python manage.py migrate.",
            )
        if received is not None:
            seconds = max(0.0, (received - written_at).total_seconds())
            return DoctorCheck("event", title, True, f"arrived {seconds:.1f} s after the upload")
        if time.monotonic() >= deadline:
            return DoctorCheck(
                "event",
                title,
                False,
                f"no event within {wait} s: the ledger and the quotas will lag until "
                "reconcile_upload_usage runs",
                "Create the MNS topic, its HTTP subscription (XML format) and the OSS event rule that "
                "python manage.py aliyun_setup prints, and check OSS_EVENTS_TOPIC_NAME / "
                "OSS_EVENTS_CERT_URL_PREFIXES and that the endpoint is reachable from the Internet.",
            )
        time.sleep(0.2)


def _check_max_session(inputs: DoctorInputs, sts_result: DoctorCheck, duration: int) -> DoctorCheck:
    title = f"Role MaxSessionDuration ≥ ALIYUN_STS_DURATION_SECONDS ({duration} s)"
    fix = (
        f"Raise the role's MaxSessionDuration to at least {duration} ({SETUP}, or RAM console → role → "
        "maximum session duration), or lower ALIYUN_STS_DURATION_SECONDS."
    )
    if inputs.admin is not None:
        try:
            role = RamAdmin(inputs.admin).role(role_arn_name(settings.ALIYUN_STS_ROLE_ARN))
        except RamError as exc:
            return DoctorCheck(
                "max_session", title, False, f"GetRole failed: {exc.code}", "Check the administrator key."
            )
        if role is None:
            return DoctorCheck(
                "max_session",
                title,
                False,
                f"no role named {role_arn_name(settings.ALIYUN_STS_ROLE_ARN)}",
                f"Create it ({SETUP}).",
            )
        ok = role.max_session_duration >= duration
        return DoctorCheck(
            "max_session",
            title,
            ok,
            f"the role's MaxSessionDuration is {role.max_session_duration} s",
            "" if ok else fix,
        )
    if sts_result.ok:
        return DoctorCheck("max_session", title, True, f"the role granted {duration} s")
    if "InvalidParameter.DurationSeconds" in sts_result.detail:
        return DoctorCheck("max_session", title, False, sts_result.detail, fix)
    return DoctorCheck(
        "max_session", title, False, "not checked: AssumeRole failed", "Fix the STS check first."
    )


def _check_probe_and_cors(
    inputs: DoctorInputs, credentials: oss_admin.TemporaryCredentials | None, key: str
) -> list[DoctorCheck]:
    origin = inputs.origins[0] if inputs.origins else None
    upload_title = (
        f"A user's credentials upload; the server reads it back and cleans up ({PROBE_USER_PREFIX}…)"
    )
    private_title = "The bucket is private"
    results: list[DoctorCheck] = []
    stored = put = None
    if credentials is None:
        results.append(
            DoctorCheck(
                "upload", upload_title, False, "not checked: AssumeRole failed", "Fix the STS check first."
            )
        )
    else:
        data = b"aliyun_doctor probe\n"
        try:
            put = oss_admin.probe_put(credentials, key, data, origin=origin)
        except oss_admin.OssAdminError as exc:
            upload = DoctorCheck(
                "upload",
                upload_title,
                False,
                f"{exc.code}: {exc}",
                (
                    f"The role's policy must allow oss:PutObject on {settings.ALIYUN_OSS_BUCKET}/user/* ({SETUP})."
                    if exc.code == "AccessDenied"
                    else f"Check ALIYUN_OSS_BUCKET / ALIYUN_OSS_ENDPOINT / ALIYUN_OSS_REGION ({exc.code})."
                ),
            )
        else:
            # Read back with the server's key, as an avatar confirmation does: a user's credentials
            # are write-only (aliyun/policy.py).
            try:
                stored = oss.head_object(key)
                if stored.size != len(data):
                    raise oss.OssError(
                        "oss_rejected",
                        f"HEAD says {stored.size} bytes, {len(data)} were sent",
                        upstream_code="SizeMismatch",
                    )
                upload = DoctorCheck("upload", upload_title, True, f"put, HEAD and delete of {key}")
            except oss.OssError as exc:
                stored = None
                upload = DoctorCheck(
                    "upload",
                    upload_title,
                    False,
                    f"the probe {key} was written but the server's key could not read it back "
                    f"({exc.upstream_code or exc.code}: {exc})",
                    f"Give the server's RAM user oss:GetObject on {settings.ALIYUN_OSS_BUCKET}/user/* ({SETUP}).",
                )
        results.append(upload)

    results.append(_check_private(private_title, key if stored is not None else None))

    if stored is not None:
        try:
            oss.delete_object(key)
        except oss.OssError as exc:
            results[0] = DoctorCheck(
                "upload",
                upload_title,
                False,
                f"the probe {key} was written but the server's key could not delete it ({exc.upstream_code or exc.code})",
                f"Give the server's RAM user oss:DeleteObject on {settings.ALIYUN_OSS_BUCKET}/{PROBE_USER_PREFIX}* ({SETUP}).",
            )

    cors = [_check_cors(other, put if other == origin else None) for other in inputs.origins or (None,)]
    results[1:1] = cors
    return results


def _check_cors(origin: str | None, put: oss_admin.ProbeAnswer | None) -> DoctorCheck:
    """A preflight for PUT from ``origin``; ETag exposed on ``put`` (the probe, sent from this origin)
    or else on the preflight's answer."""
    title = f"CORS: a browser at {origin or '(no origin)'} may upload and read ETag"
    fix = f"Add a bucket CORS rule allowing {origin} (methods GET, PUT, POST, DELETE, HEAD; headers *) and exposing ETag ({SETUP} --origin {origin})."
    if not origin:
        return DoctorCheck(
            "cors",
            title,
            False,
            "no site origin to check",
            "Set DJANGO_CSRF_TRUSTED_ORIGINS to the site's origin (and ALIYUN_OSS_APP_ORIGINS to apps' "
            "web-view origins), or pass --origin https://your.site (repeatable).",
        )
    try:
        answer = requests.options(
            oss.object_url(f"{PROBE_USER_PREFIX}aliyun-doctor-preflight"),
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": BROWSER_REQUEST_HEADERS,
            },
            timeout=HTTP_TIMEOUT,
        )
    except requests.RequestException as exc:
        return DoctorCheck(
            "cors", title, False, f"preflight failed: {type(exc).__name__}", "Check ALIYUN_OSS_ENDPOINT."
        )
    allowed_origin = answer.headers.get("Access-Control-Allow-Origin", "")
    if answer.status_code != 200 or allowed_origin not in (origin, "*"):
        return DoctorCheck(
            "cors",
            title,
            False,
            f"the preflight for PUT from {origin} was refused ({answer.status_code})",
            fix,
        )
    # A browser reads the expose list of the actual answer (the probe's PUT, sent with this Origin);
    # without a probe, the preflight's.
    actual = put.headers if put is not None and "access-control-allow-origin" in put.headers else None
    exposed = (actual or answer.headers).get("access-control-expose-headers", "")
    if "etag" not in {name.strip().lower() for name in exposed.split(",")}:
        return DoctorCheck(
            "cors",
            title,
            False,
            f"ETag is not exposed (Access-Control-Expose-Headers: {exposed or 'none'})",
            f"Expose ETag in the bucket's CORS rule, or browser multipart uploads fail ({SETUP} --origin {origin}).",
        )
    return DoctorCheck("cors", title, True, f"preflight allowed, exposed: {exposed}")


def _check_private(title: str, probe_key: str | None) -> DoctorCheck:
    """Anonymous requests must be refused: listing the bucket and reading an object in it."""
    urls = {"list": oss.object_url("")}
    if probe_key:
        urls["read"] = oss.object_url(probe_key)
    try:
        statuses = {what: requests.get(url, timeout=HTTP_TIMEOUT).status_code for what, url in urls.items()}
    except requests.RequestException as exc:
        return DoctorCheck(
            "private", title, False, f"could not ask OSS: {type(exc).__name__}", "Check ALIYUN_OSS_ENDPOINT."
        )
    public = [what for what, status in statuses.items() if status < 400]
    detail = ", ".join(f"anonymous {what}: {status}" for what, status in statuses.items())
    if any(status >= 500 for status in statuses.values()):
        return DoctorCheck("private", title, False, detail, "OSS failed to answer; run the doctor again.")
    if public:
        return DoctorCheck(
            "private",
            title,
            False,
            detail,
            f"Make the bucket private: aliyun oss set-acl oss://{settings.ALIYUN_OSS_BUCKET} private -b "
            "(and remove any bucket policy that grants anonymous access).",
        )
    return DoctorCheck("private", title, True, detail)


def checks_json(results: list[DoctorCheck]) -> dict[str, Any]:
    return {"ok": all(result.ok for result in results), "checks": [asdict(result) for result in results]}
