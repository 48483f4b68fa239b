"""`manage.py sandbox`: serve the local STS and OSS on the addresses the app is configured to call.

Running without an AccessKey against the sandbox (RRSA, as on ACK)
------------------------------------------------------------------
`python manage.py sandbox --sts-tls-port 8703` also serves STS over HTTPS on 127.0.0.1:8703,
writes its CA certificate to `<SANDBOX_DATA_DIR>/tls/ca.pem`, and projects an OIDC token to
`<SANDBOX_DATA_DIR>/oidc/token` (or `--oidc-token-file`), replaced every
`--oidc-token-rotate-seconds` (default: at 80 % of `--oidc-token-ttl`, 3600 s). It prints the
ARNs to use. How the installed `alibabacloud-credentials` (1.0.12) finds STS and trusts it:

- Endpoint: `OIDCRoleArnCredentialsProvider` and `RamRoleArnCredentialsProvider` take it from the
  `sts_endpoint` constructor argument (`host:port`) and always call `https://`. Without it they
  build `sts.aliyuncs.com`, or `sts.<ALIBABA_CLOUD_STS_REGION>.aliyuncs.com` (`sts-vpc.` with
  `ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true`), port 443: no environment variable names another
  endpoint, so the default chain built from variables alone cannot reach the sandbox; build the
  provider with `sts_endpoint="127.0.0.1:8703"`. The chain's variables
  (`ALIBABA_CLOUD_ROLE_ARN`, `ALIBABA_CLOUD_OIDC_PROVIDER_ARN`, `ALIBABA_CLOUD_OIDC_TOKEN_FILE`,
  `ALIBABA_CLOUD_CREDENTIALS_URI`, ...) are read once, when `alibabacloud_credentials` is imported.
- Trust: its HTTP stack (`Tea.core.TeaCore`, requests) builds an `ssl.create_default_context()`
  and adds certifi's bundle; it ignores `REQUESTS_CA_BUNDLE` and `CURL_CA_BUNDLE` (`Session.send`
  is called directly) but OpenSSL's default verify paths honour `SSL_CERT_FILE`: set
  `SSL_CERT_FILE=<SANDBOX_DATA_DIR>/tls/ca.pem` in the process's environment before its first STS
  call (the TLS session is cached per host and port). Alibaba's own endpoints stay trusted through
  certifi. (`tests/sandbox/test_sts_keyless.py` runs this recipe.)
- The URI provider (`ALIBABA_CLOUD_CREDENTIALS_URI`) uses the URL's own scheme:
  `http://127.0.0.1:8701/__sandbox__/credentials` serves the server role's credentials.

Fault switches can be changed while it runs: `POST /__sandbox__/faults` on the STS port with a
JSON object, e.g. `{"sts_max_calls_per_second": 100, "latency_ms": 3000}`; `GET
/__sandbox__/stats` shows them and the per-second AssumeRole counts.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.aliyun_names import is_loopback_host
from sandbox.config import SandboxConfig
from sandbox.events import CERT_PATH
from sandbox.server import Sandbox, check_loopback


def _address(endpoint: str, setting: str) -> tuple[str, int]:
    """(host, port) of `host:port` or `http://host:port`, refusing non-loopback hosts."""
    parts = urlsplit(endpoint if "//" in endpoint else f"//{endpoint}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or not port:
        raise CommandError(f"{setting}={endpoint!r} must name a host and a port, e.g. 127.0.0.1:8701")
    try:
        return check_loopback(parts.hostname), port
    except ValueError as exc:
        raise CommandError(f"{setting}: {exc}") from None


def _all_local(*endpoints: str) -> bool:
    for endpoint in endpoints:
        if not is_loopback_host(urlsplit(endpoint if "//" in endpoint else f"//{endpoint}").hostname or ""):
            return False
    return True


class Command(BaseCommand):
    help = (
        "Serve the Alibaba Cloud sandbox: STS on ALIYUN_STS_ENDPOINT and OSS on ALIYUN_OSS_ENDPOINT "
        "(loopback only), using the ALIYUN_* credentials, role and bucket."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every STS call")
        parser.add_argument(
            "--throttle-every",
            type=int,
            default=0,
            help="answer Throttling.User to every Nth call (0: never)",
        )
        parser.add_argument(
            "--fail-every", type=int, default=0, help="answer 500 InternalError to every Nth call (0: never)"
        )
        parser.add_argument(
            "--clock-skew-seconds",
            type=float,
            default=0.0,
            help="run the sandbox's clock this many seconds ahead (negative: behind), as a skewed server",
        )
        parser.add_argument(
            "--sts-max-calls-per-second",
            type=int,
            default=0,
            help="answer Throttling.User past N AssumeRole* calls in one second, as Alibaba's "
            "per-account quota (100) does (0: unlimited)",
        )
        parser.add_argument(
            "--sts-rate-window",
            choices=("sliding", "fixed"),
            default="sliding",
            help="count the limit over any sliding second (default, the stricter reading) or per "
            "wall-clock second",
        )
        parser.add_argument(
            "--sts-tls-port",
            type=int,
            default=getattr(settings, "SANDBOX_STS_TLS_PORT", None),
            help="also serve STS over HTTPS on this port of the STS host (SANDBOX_STS_TLS_PORT; "
            "alibabacloud-credentials calls STS over HTTPS only)",
        )
        parser.add_argument(
            "--oidc-token-file",
            type=Path,
            default=None,
            help="where to project the OIDC token (default <SANDBOX_DATA_DIR>/oidc/token)",
        )
        parser.add_argument(
            "--oidc-token-ttl", type=int, default=3600, help="lifetime of each OIDC token, seconds"
        )
        parser.add_argument(
            "--oidc-token-rotate-seconds",
            type=float,
            default=0,
            help="write a new OIDC token this often (default: at 80%% of its lifetime)",
        )
        parser.add_argument(
            "--data-dir", type=Path, default=None, help="where objects live (SANDBOX_DATA_DIR)"
        )
        parser.add_argument(
            "--event-endpoint",
            default=None,
            help="push OSS event notifications, signed as MNS does, to this URL (SANDBOX_EVENT_ENDPOINT; '' is off)",
        )
        parser.add_argument(
            "--event-format",
            choices=["xml", "simplified"],
            default=None,
            help="the push body: MNS's XML with metadata (default, SANDBOX_EVENT_FORMAT) or SIMPLIFIED",
        )
        parser.add_argument(
            "--event-duplicate",
            action="store_true",
            help="deliver every event push twice (MNS is at-least-once)",
        )
        parser.add_argument(
            "--event-max-delay-ms",
            type=int,
            default=0,
            help="delay each push by a random 0..N ms, reordering them",
        )
        parser.add_argument(
            "--only-if-local",
            action="store_true",
            help="do nothing (exit 0) when the ALIYUN_* endpoints point at Alibaba Cloud, as `make run` does",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["only_if_local"] and not _all_local(
            settings.ALIYUN_STS_ENDPOINT, settings.ALIYUN_OSS_ENDPOINT
        ):
            self.stdout.write("ALIYUN_* endpoints point at Alibaba Cloud: the local sandbox is not started.")
            return
        tls_port = options["sts_tls_port"]
        if tls_port is not None and not 0 < int(tls_port) < 65536:
            raise CommandError(f"--sts-tls-port must be a port number, got {tls_port}")
        sts_address = _address(settings.ALIYUN_STS_ENDPOINT, "ALIYUN_STS_ENDPOINT")
        oss_address = _address(settings.ALIYUN_OSS_ENDPOINT, "ALIYUN_OSS_ENDPOINT")
        overrides: dict[str, Any] = {"data_dir": options["data_dir"]} if options["data_dir"] else {}
        if options["event_endpoint"] is not None:
            overrides["event_endpoint"] = options["event_endpoint"]
        if options["event_format"] is not None:
            overrides["event_format"] = options["event_format"]
        overrides.update(
            oidc_token_file=options["oidc_token_file"],
            oidc_token_ttl_seconds=options["oidc_token_ttl"],
            oidc_token_rotate_seconds=options["oidc_token_rotate_seconds"],
        )
        try:
            config = SandboxConfig.from_settings(**overrides)
            config.faults.configure(
                latency_ms=options["latency_ms"],
                throttle_every=options["throttle_every"],
                fail_every=options["fail_every"],
                clock_skew_seconds=options["clock_skew_seconds"],
                sts_max_calls_per_second=options["sts_max_calls_per_second"],
                sts_rate_window=options["sts_rate_window"],
            )
        except ValueError as exc:
            raise CommandError(f"sandbox configuration: {exc}") from None

        stopping = threading.Event()

        def request_stop(signum: int, frame: Any) -> None:
            stopping.set()

        sandbox = Sandbox(
            config,
            sts_address=sts_address,
            oss_address=oss_address,
            sts_tls_address=(sts_address[0], int(tls_port)) if tls_port else None,
        )
        try:
            sandbox.events.configure(
                duplicate=options["event_duplicate"], max_delay_ms=options["event_max_delay_ms"]
            )
        except ValueError as exc:
            raise CommandError(f"sandbox configuration: {exc}") from None
        try:
            sandbox.start()
        except OSError as exc:
            raise CommandError(f"cannot start the sandbox: {exc}") from None
        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.stdout.write(f"Sandbox STS listening on {sandbox.sts_endpoint} (role {config.role_arn})")
            self.stdout.write(
                f"Sandbox OSS listening on {sandbox.oss_endpoint} (bucket {config.bucket}, data in {config.data_dir})"
            )
            if config.event_endpoint:
                self.stdout.write(
                    f"Sandbox pushes OSS events ({config.event_format}) to {config.event_endpoint}, "
                    f"signed with {sandbox.oss_endpoint}{CERT_PATH}"
                )
            if tls_port:
                self.stdout.write(
                    f"Sandbox STS over HTTPS on {sandbox.sts_tls_endpoint} (trust it: SSL_CERT_FILE={sandbox.ca_file})"
                )
            self.stdout.write(
                f"Keyless server identity: ALIBABA_CLOUD_ROLE_ARN={config.server_role_arn} "
                f"ALIBABA_CLOUD_OIDC_PROVIDER_ARN={config.oidc_provider_arn} "
                f"ALIBABA_CLOUD_OIDC_TOKEN_FILE={config.oidc_token_file} "
                f"or ALIBABA_CLOUD_CREDENTIALS_URI=http://{sandbox.sts_endpoint}/__sandbox__/credentials"
            )
            if options["sts_max_calls_per_second"]:
                self.stdout.write(
                    f"STS allows {options['sts_max_calls_per_second']} AssumeRole calls per second "
                    f"({options['sts_rate_window']} window)"
                )
            while not stopping.wait(0.5):
                pass
        finally:
            sandbox.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stdout.write("Sandbox stopped.")
