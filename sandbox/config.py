"""Configuration of the local STS/OSS sandbox, and its per-run fault switches."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from core.aliyun_names import role_arn_account_id
from sandbox.sts_meter import StsCallMeter

if TYPE_CHECKING:
    from sandbox.bucket_config import BucketSettings
    from sandbox.oidc import OidcIssuer
    from sandbox.ram import RamStore

# Object-level actions a role scoped to one bucket gets by default. ACL actions
# are deliberately absent, so even the role itself cannot make an object public.
OBJECT_ACTIONS: tuple[str, ...] = (
    "oss:PutObject",
    "oss:GetObject",
    "oss:DeleteObject",
    "oss:AbortMultipartUpload",
    "oss:ListParts",
)

FaultOutcome = Literal["ok", "throttle", "fail"]


def default_role_policy(bucket: str) -> dict[str, Any]:
    """The role's own policy when none is configured: all object actions on the bucket."""
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": list(OBJECT_ACTIONS),
                "Resource": [f"acs:oss:*:*:{bucket}/*"],
            }
        ],
    }


def server_user_policy(bucket: str) -> dict[str, Any]:
    """The RAM user's own policy (the server's long-term key): object actions, and listing the bucket.

    The server lists a user's folders to count what they hold (``reconcile_upload_usage``); the
    README's RAM set-up grants the same.
    """
    policy = default_role_policy(bucket)
    policy["Statement"].append(
        {"Effect": "Allow", "Action": ["oss:ListObjects"], "Resource": [f"acs:oss:*:*:{bucket}"]}
    )
    return policy


@dataclass
class Faults:
    """Fault injection for tests and benchmarks, changeable while the sandbox runs.

    `throttle_every` / `fail_every`: 0 is off, 1 is every AssumeRole call, N every
    Nth call (counted from the start). A failure wins over a throttle on the same
    call. `throttle_retry_after_ms` > 0 adds an `x-acs-retry-after` header to the
    throttle answer (see `sts.py` for why); 0 leaves it out.
    `sts_max_calls_per_second` > 0 answers `Throttling.User` past that many AssumeRole and
    AssumeRoleWithOIDC calls in one second, as Alibaba's per-account quota does (`sts_meter.py`).
    """

    latency_ms: float = 0.0
    throttle_every: int = 0
    fail_every: int = 0
    throttle_retry_after_ms: int = 1000
    clock_skew_seconds: float = 0.0
    received: int = 0
    issued: int = 0
    throttled: int = 0
    failed: int = 0
    meter: StsCallMeter = field(default_factory=StsCallMeter, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def configure(
        self,
        *,
        latency_ms: float | None = None,
        throttle_every: int | None = None,
        fail_every: int | None = None,
        throttle_retry_after_ms: int | None = None,
        clock_skew_seconds: float | None = None,
        sts_max_calls_per_second: int | None = None,
        sts_rate_window: str | None = None,
    ) -> None:
        """Change the switches atomically; None leaves a switch as it is.

        `clock_skew_seconds` (may be negative) moves the sandbox's clock: its `Date` headers and the
        time it checks signatures and tokens against, as a server whose clock is off sees it.
        """
        for name, value in (
            ("latency_ms", latency_ms),
            ("throttle_every", throttle_every),
            ("fail_every", fail_every),
            ("throttle_retry_after_ms", throttle_retry_after_ms),
        ):
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.meter.configure(max_calls_per_second=sts_max_calls_per_second, window=sts_rate_window)
        with self._lock:
            if latency_ms is not None:
                self.latency_ms = float(latency_ms)
            if throttle_every is not None:
                self.throttle_every = int(throttle_every)
            if fail_every is not None:
                self.fail_every = int(fail_every)
            if throttle_retry_after_ms is not None:
                self.throttle_retry_after_ms = int(throttle_retry_after_ms)
            if clock_skew_seconds is not None:
                self.clock_skew_seconds = float(clock_skew_seconds)

    def now(self) -> datetime:
        """The sandbox's own clock (UTC), shifted by `clock_skew_seconds`."""
        return datetime.now(UTC) + timedelta(seconds=self.clock_skew_seconds)

    def next_call(self) -> FaultOutcome:
        """Count one received call and decide its fate."""
        with self._lock:
            self.received += 1
            n = self.received
            if self.fail_every and n % self.fail_every == 0:
                self.failed += 1
                return "fail"
            if self.throttle_every and n % self.throttle_every == 0:
                self.throttled += 1
                return "throttle"
            return "ok"

    def record_issued(self) -> None:
        """Count one set of credentials handed out."""
        with self._lock:
            self.issued += 1

    def snapshot(self) -> dict[str, float | int]:
        """A consistent copy of switches and counters, for the stats endpoint."""
        meter = self.meter.snapshot()
        with self._lock:
            return {
                "received": self.received,
                "issued": self.issued,
                # Every Throttling answer: the injected ones and those past the per-second budget.
                "throttled": self.throttled + meter["rate_throttled"],
                "failed": self.failed,
                "latency_ms": self.latency_ms,
                "throttle_every": self.throttle_every,
                "fail_every": self.fail_every,
                "throttle_retry_after_ms": self.throttle_retry_after_ms,
                "clock_skew_seconds": self.clock_skew_seconds,
                **meter,
            }


@dataclass
class SandboxConfig:
    """Everything the sandbox needs; the same values the app uses for real Alibaba Cloud."""

    access_key_id: str
    access_key_secret: str
    role_arn: str
    bucket: str
    region: str = "cn-hangzhou"
    data_dir: Path = field(default_factory=lambda: Path("var/sandbox"))
    role_policy: dict[str, Any] | None = None
    role_max_session_duration: int = 3600
    # Origins the bucket answers CORS for while no CORS rule was applied to it (PutBucketCors).
    cors_allowed_origins: list[str] = field(default_factory=lambda: ["*"])
    # The RAM user owning access_key_id (what GetCallerIdentity names).
    ram_user_name: str = "uploads-server"
    # The account that owns the emulated bucket; empty: the role's own account (from role_arn).
    owner_account_id: str = ""
    # What a GET or HEAD through a symbolic link must be allowed. Alibaba says the ACLs of the link
    # and of its target are checked, not whether RAM evaluates a policy against the target too.
    # "link-and-target" (default): oss:GetObject on both; "link-only": on the link alone, the reading
    # under which any token that may read its own folder reads the whole bucket through a link.
    symlink_reads: str = "link-and-target"
    # OSS event notifications pushed as SMQ (MNS) does (sandbox/events.py); no endpoint: none are sent.
    event_endpoint: str = ""
    event_format: str = "xml"  # the subscription's NotifyContentFormat: "xml" or "simplified"
    event_topic: str = "oss-events"
    event_subscription: str = "uploads-server"
    event_rule_id: str = "sandbox-rule"
    event_retry_strategy: str = "exponential"  # NotifyStrategy: EXPONENTIAL_DECAY_RETRY or BACKOFF_RETRY
    event_max_attempts: int = 0  # 0: as the strategy says (1 + 176, or 1 + 3)
    event_retry_scale: float = 1.0  # multiplies every wait between attempts (tests: 0.001)
    event_timeout_seconds: float = 5.0  # MNS retries a push not answered 204 within 5 s
    faults: Faults = field(default_factory=Faults)
    # The server's own identity without an AccessKey (`sandbox/oidc.py`): a role trusted by the RAM
    # user and by the OIDC provider, allowed to assume the upload role (role_arn).
    server_role_name: str = "sandbox-server"
    oidc_provider_name: str = "sandbox-oidc"
    # An RRSA issuer is an HTTPS URL (ACK's is on OSS); the sandbox's is never fetched.
    oidc_issuer: str = "https://oidc.sandbox.localhost/uploads"
    oidc_audience: str = "sts.aliyuncs.com"
    oidc_subject: str = "system:serviceaccount:default:uploads-server"
    # Where the projected token is written (None: <data_dir>/oidc/token), its lifetime and how
    # often a new one replaces it (0: at 80 % of the lifetime, as the kubelet does).
    oidc_token_file: Path | None = None
    oidc_token_ttl_seconds: int = 3600
    oidc_token_rotate_seconds: float = 0
    _ram: RamStore | None = field(default=None, init=False, repr=False, compare=False)
    _oidc: OidcIssuer | None = field(default=None, init=False, repr=False, compare=False)
    _bucket_settings: BucketSettings | None = field(default=None, init=False, repr=False, compare=False)
    _state_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Imported here: policy.py is pure and must stay importable without config.
        from sandbox.policy import parse_policy

        self.data_dir = Path(self.data_dir)
        if self.role_policy is None:
            self.role_policy = default_role_policy(self.bucket)
        parse_policy(self.role_policy)  # fail at start-up, not on the first request
        if not 3600 <= self.role_max_session_duration <= 43200:
            raise ValueError(
                "role_max_session_duration must be within 3600..43200 seconds "
                f"(Alibaba's MaxSessionDuration range), got {self.role_max_session_duration}"
            )
        for name in ("access_key_id", "access_key_secret", "role_arn", "bucket"):
            if not getattr(self, name):
                raise ValueError(f"SandboxConfig.{name} must not be empty")
        self._check_events()
        if not self.owner_account_id:
            self.owner_account_id = role_arn_account_id(self.role_arn)
        self.oidc_token_file = Path(self.oidc_token_file or self.data_dir / "oidc" / "token")
        if (
            self.oidc_token_ttl_seconds < 1
            or not 0 <= self.oidc_token_rotate_seconds < self.oidc_token_ttl_seconds
        ):
            raise ValueError(
                "oidc_token_ttl_seconds must be >= 1 and oidc_token_rotate_seconds within "
                f"0..ttl (got {self.oidc_token_ttl_seconds}, {self.oidc_token_rotate_seconds})"
            )
        if not self.owner_account_id.isascii() or not self.owner_account_id.isdigit():
            raise ValueError(
                "SandboxConfig.owner_account_id must be an account id (digits); give it, or a role_arn "
                f"of the form acs:ram::<account-id>:role/<name> (got {self.role_arn!r})"
            )

    def _check_events(self) -> None:
        from sandbox.events import EVENT_FORMATS, RETRY_STRATEGIES, retries_of

        if self.event_endpoint and not self.event_endpoint.startswith(("http://", "https://")):
            raise ValueError(f"event_endpoint must be an http(s) URL, got {self.event_endpoint!r}")
        if self.event_format not in EVENT_FORMATS:
            raise ValueError(f"event_format must be one of {EVENT_FORMATS}, got {self.event_format!r}")
        if self.event_retry_strategy not in RETRY_STRATEGIES:
            raise ValueError(
                f"event_retry_strategy must be one of {RETRY_STRATEGIES}, got {self.event_retry_strategy!r}"
            )
        if self.event_max_attempts < 0 or self.event_retry_scale < 0 or self.event_timeout_seconds <= 0:
            raise ValueError(
                "event_max_attempts and event_retry_scale must be >= 0, event_timeout_seconds > 0"
            )
        if not self.event_max_attempts:
            self.event_max_attempts = 1 + retries_of(self.event_retry_strategy)

    @property
    def ram(self) -> RamStore:
        """The account's RAM state (users, policies, roles), shared by the STS and OSS apps."""
        from sandbox.ram import RamStore

        with self._state_lock:
            if self._ram is None:
                self._ram = RamStore(self)
            return self._ram

    @property
    def account_id(self) -> str:
        """The RAM account of the roles (the one in role_arn)."""
        return role_arn_account_id(self.role_arn)

    @property
    def server_role_arn(self) -> str:
        """`acs:ram::<account>:role/<server_role_name>` (RAM writes role names in lower case)."""
        return f"acs:ram::{self.account_id}:role/{self.server_role_name.lower()}"

    @property
    def oidc_provider_arn(self) -> str:
        """`acs:ram::<account>:oidc-provider/<name>`, what ALIBABA_CLOUD_OIDC_PROVIDER_ARN names."""
        return f"acs:ram::{self.account_id}:oidc-provider/{self.oidc_provider_name}"

    @property
    def oidc(self) -> OidcIssuer:
        """The local OIDC issuer: its RS256 key in <data_dir>/oidc, minting and checking tokens."""
        from sandbox.oidc import OidcIssuer

        with self._state_lock:
            if self._oidc is None:
                self._oidc = OidcIssuer(self)
            return self._oidc

    @property
    def bucket_settings(self) -> BucketSettings:
        """The bucket's applied CORS and lifecycle configuration."""
        from sandbox.bucket_config import BucketSettings

        with self._state_lock:
            if self._bucket_settings is None:
                self._bucket_settings = BucketSettings(self.data_dir, self.bucket)
            return self._bucket_settings

    @classmethod
    def from_settings(cls, **overrides: Any) -> SandboxConfig:
        """Build from django.conf.settings (the ALIYUN_* and SANDBOX_* settings)."""
        from django.conf import settings

        values: dict[str, Any] = {
            "access_key_id": settings.ALIYUN_ACCESS_KEY_ID,
            "access_key_secret": settings.ALIYUN_ACCESS_KEY_SECRET,
            "role_arn": settings.ALIYUN_STS_ROLE_ARN,
            "bucket": settings.ALIYUN_OSS_BUCKET,
            "region": settings.ALIYUN_OSS_REGION,
            "data_dir": Path(settings.SANDBOX_DATA_DIR),
            "role_policy": _policy_setting(getattr(settings, "SANDBOX_ROLE_POLICY", None)),
            "owner_account_id": getattr(settings, "ALIYUN_OSS_OWNER_ACCOUNT_ID", "") or "",
            "role_max_session_duration": int(
                getattr(settings, "SANDBOX_ROLE_MAX_SESSION_DURATION", None) or 3600
            ),
            "cors_allowed_origins": list(getattr(settings, "SANDBOX_CORS_ALLOWED_ORIGINS", None) or []),
            "event_endpoint": getattr(settings, "SANDBOX_EVENT_ENDPOINT", "") or "",
            "event_format": (getattr(settings, "SANDBOX_EVENT_FORMAT", "") or "xml").lower(),
        }
        values.update(overrides)
        return cls(**values)


def _policy_setting(value: Any) -> dict[str, Any] | None:
    """SANDBOX_ROLE_POLICY may arrive as a dict or as the JSON text of an env var."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        return json.loads(value)
    return dict(value)
