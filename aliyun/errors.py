"""The one error type of the seam: whatever an SDK raised, callers see an ``AliyunError``."""


class AliyunError(Exception):
    """Alibaba Cloud did not do what the server asked.

    ``code`` is stable and machine-readable: the project's own for the web path (``sts_throttled``,
    ``sts_unavailable``, ``sts_rejected``, ``object_not_found``, ``object_changed``, ``oss_unavailable``,
    ``oss_rejected``), Alibaba's for the operator commands (``NoPermission``, ``AccessDenied``…, or
    ``unreachable``). ``upstream_code`` is Alibaba's code when ``code`` is ours; ``request_id`` the
    request id Alibaba answered with; ``retry_after`` seconds to wait, when known; ``status`` the HTTP
    status Alibaba answered with (0: none). The message never holds a secret.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        upstream_code: str = "",
        request_id: str = "",
        retry_after: int | None = None,
        status: int = 0,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.upstream_code = upstream_code
        self.request_id = request_id
        self.retry_after = retry_after
        self.status = status
