"""Run the sandbox's STS and OSS apps on loopback addresses, in background threads.

Used by `manage.py sandbox` and by tests (port 0 picks a free port). Binding is
refused on anything but a loopback address: the sandbox accepts a well-known
demo key and must never be reachable from the network.

With `sts_tls_address`, the same STS app also answers HTTPS there (`sandbox/tls.py`: a
certificate for localhost/127.0.0.1/::1 signed by a CA written to `<data_dir>/tls/ca.pem`), as
`alibabacloud-credentials` always calls STS over HTTPS. While running, the sandbox projects an
OIDC token to `SandboxConfig.oidc_token_file` and rotates it (`sandbox/oidc.py`).
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from core.aliyun_names import is_loopback_host
from sandbox.config import SandboxConfig
from sandbox.events import CERT_PATH, EventPublisher
from sandbox.oidc import TokenProjector
from sandbox.sts import make_sts_app
from sandbox.tls import TlsFiles, ensure_tls_files, server_ssl_context

__all__ = ["Sandbox", "check_loopback"]

logger = logging.getLogger(__name__)

# Query strings carry signatures and security tokens (presigned URLs, RPC v2):
# never let a log line show them.
_QUERY_RE = re.compile(r"\?[^\s\"']*")


def check_loopback(host: str) -> str:
    """Return `host` if it is a loopback address, else raise ValueError."""
    if not is_loopback_host(host):
        raise ValueError(
            f"refusing to serve the sandbox on {host!r}: it accepts demo credentials and must "
            "only listen on a loopback address (127.0.0.1, ::1 or localhost)"
        )
    return host if host == "localhost" else host.strip("[]")


class _QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's handler, with query strings stripped from its log lines."""

    def send_response(self, code: int, message: str | None = None) -> None:
        """Without http.server's own `Server` and `Date`: the apps send OSS's and STS's, the `Date`
        from the sandbox's clock (which a fault may skew), so a client sees one of each."""
        self.log_request(code)
        self.send_response_only(code, message)

    def log(self, type: str, message: str, *args: Any) -> None:
        redacted = tuple(_QUERY_RE.sub("?…", a) if isinstance(a, str) else a for a in args)
        super().log(type, _QUERY_RE.sub("?…", message), *redacted)


class Sandbox:
    """The STS and OSS sandbox servers, started and stopped together."""

    def __init__(
        self,
        config: SandboxConfig,
        sts_address: tuple[str, int] = ("127.0.0.1", 0),
        oss_address: tuple[str, int] = ("127.0.0.1", 0),
        *,
        quiet: bool = True,
        sts_tls_address: tuple[str, int] | None = None,
        project_oidc_token: bool = True,
    ) -> None:
        self.config = config
        self._sts_address = (check_loopback(sts_address[0]), int(sts_address[1]))
        self._oss_address = (check_loopback(oss_address[0]), int(oss_address[1]))
        self._sts_tls_address = (
            (check_loopback(sts_tls_address[0]), int(sts_tls_address[1])) if sts_tls_address else None
        )
        self._quiet = quiet
        self._servers: list[BaseWSGIServer] = []
        self._threads: list[threading.Thread] = []
        # OSS event notifications (sandbox/events.py): pushed only while config.event_endpoint is set.
        self.events = EventPublisher(config)
        self.projector: TokenProjector | None = TokenProjector(config) if project_oidc_token else None
        self._tls_files: TlsFiles | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind both servers and serve them in daemon threads."""
        if self._servers:
            raise RuntimeError("sandbox already started")
        # Imported here so this module (and the STS half) load before oss.py exists.
        from sandbox.oss import make_oss_app

        werkzeug_logger = logging.getLogger("werkzeug")
        if self._quiet and werkzeug_logger.level == logging.NOTSET:
            werkzeug_logger.setLevel(logging.WARNING)

        sts_app = make_sts_app(self.config)
        apps: list[tuple[tuple[str, int], Any, Any]] = [
            (self._sts_address, sts_app, None),
            (self._oss_address, make_oss_app(self.config, events=self.events), None),
        ]
        names = ["sts", "oss"]
        if self._sts_tls_address is not None:
            self._tls_files = ensure_tls_files(self.config.data_dir)
            context = server_ssl_context(self._tls_files)
            apps.append((self._sts_tls_address, sts_app, context))
            names.append("sts-tls")
        try:
            for (host, port), app, ssl_context in apps:
                server = make_server(
                    host,
                    port,
                    app,
                    threaded=True,
                    request_handler=_QuietRequestHandler,
                    ssl_context=ssl_context,
                )
                server.daemon_threads = True
                self._servers.append(server)
        except BaseException:
            self._close_servers()
            raise
        if self.projector is not None:
            self.projector.start()
        for server, name in zip(self._servers, names, strict=True):
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"sandbox-{name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        self.events.start(cert_url=f"{self.oss_endpoint}{CERT_PATH}")
        logger.info("sandbox started: STS on %s, OSS on %s", self.sts_endpoint, self.oss_endpoint)
        return self

    def stop(self) -> None:
        """Stop serving and release the ports; safe to call twice."""
        self.events.stop()
        if self.projector is not None:
            self.projector.stop()
        for server in self._servers:
            server.shutdown()
        for thread in self._threads:
            thread.join(timeout=5)
        self._close_servers()
        self._threads.clear()

    def _close_servers(self) -> None:
        for server in self._servers:
            server.server_close()
        self._servers.clear()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- addresses -----------------------------------------------------------------------

    @property
    def sts_endpoint(self) -> str:
        """`host:port`, the form alibabacloud_tea_openapi's Config(endpoint=...) wants."""
        return _host_port(self._server(0))

    @property
    def oss_endpoint(self) -> str:
        """`http://host:port`, the form oss2 and ali-oss want."""
        return f"http://{_host_port(self._server(1))}"

    @property
    def sts_tls_endpoint(self) -> str:
        """`host:port` of the HTTPS STS (what `alibabacloud-credentials` takes as `sts_endpoint`)."""
        if self._sts_tls_address is None:
            raise RuntimeError("the sandbox was started without sts_tls_address")
        return _host_port(self._server(2))

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients must trust to reach the HTTPS STS."""
        if self._tls_files is None:
            raise RuntimeError("the sandbox was started without sts_tls_address")
        return self._tls_files.ca_cert

    def _server(self, index: int) -> BaseWSGIServer:
        if not self._servers:
            raise RuntimeError("sandbox is not running: call start() first")
        return self._servers[index]


def _host_port(server: BaseWSGIServer) -> str:
    host = server.host
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{host}:{server.server_port}"
