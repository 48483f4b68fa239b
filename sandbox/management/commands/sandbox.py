"""`manage.py sandbox`: serve the local STS and OSS on the addresses the app is configured to call."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
        from django.conf import settings

        if options["only_if_local"] and not _all_local(
            settings.ALIYUN_STS_ENDPOINT, settings.ALIYUN_OSS_ENDPOINT
        ):
            self.stdout.write("ALIYUN_* endpoints point at Alibaba Cloud: the local sandbox is not started.")
            return
        sts_address = _address(settings.ALIYUN_STS_ENDPOINT, "ALIYUN_STS_ENDPOINT")
        oss_address = _address(settings.ALIYUN_OSS_ENDPOINT, "ALIYUN_OSS_ENDPOINT")
        overrides: dict[str, Any] = {"data_dir": options["data_dir"]} if options["data_dir"] else {}
        if options["event_endpoint"] is not None:
            overrides["event_endpoint"] = options["event_endpoint"]
        if options["event_format"] is not None:
            overrides["event_format"] = options["event_format"]
        try:
            config = SandboxConfig.from_settings(**overrides)
            config.faults.configure(
                latency_ms=options["latency_ms"],
                throttle_every=options["throttle_every"],
                fail_every=options["fail_every"],
                clock_skew_seconds=options["clock_skew_seconds"],
            )
        except ValueError as exc:
            raise CommandError(f"sandbox configuration: {exc}") from None

        stopping = threading.Event()

        def request_stop(signum: int, frame: Any) -> None:
            stopping.set()

        sandbox = Sandbox(config, sts_address=sts_address, oss_address=oss_address)
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
            while not stopping.wait(0.5):
                pass
        finally:
            sandbox.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stdout.write("Sandbox stopped.")
