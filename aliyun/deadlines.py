"""How long a call to Alibaba Cloud may take at most, from the settings alone (no SDK import), so the
server's configuration (``config/gunicorn.conf.py``'s worker timeout) can derive from it."""

from django.conf import settings


def sts_call_deadline_seconds() -> float:
    """The longest a user's AssumeRole call may take with its retries, in seconds, not counting waits
    for the budget: every attempt's connect and read timeouts (``ALIYUN_STS_CONNECT_TIMEOUT_MS``,
    ``ALIYUN_STS_READ_TIMEOUT_MS``) plus up to 1 s of pause each, times ``ALIYUN_STS_MAX_ATTEMPTS``
    (one ``aliyun.sts.assume_role`` is one attempt; ``uploads/services/reuse.py`` retries)."""
    per_attempt = (settings.ALIYUN_STS_CONNECT_TIMEOUT_MS + settings.ALIYUN_STS_READ_TIMEOUT_MS) / 1000
    return settings.ALIYUN_STS_MAX_ATTEMPTS * (per_attempt + 1.0)
