"""Bearer secrets that travel in URLs are cut out of every log line.

A credential URL (``/api/uploads/sts-server/<secret>/``, see ``uploads/services/credential_urls.py``) must carry its
secret in the path, because Alibaba's mobile credential providers can only GET a URL. Every secret
of that kind starts with ``CREDENTIAL_URL_SECRET_PREFIX`` so it can be recognised wherever it turns
up (an access log line, Django's "Not Found: <path>", an exception message, a pasted URL) and
replaced by ``osscu_[redacted]``. The prefix is also what secret scanners can look for.
"""

import logging
import re
from typing import Any

from django.http import HttpRequest

CREDENTIAL_URL_SECRET_PREFIX = "osscu_"
_SECRET = re.compile(re.escape(CREDENTIAL_URL_SECRET_PREFIX) + r"[A-Za-z0-9_\-%]+")
REDACTED = CREDENTIAL_URL_SECRET_PREFIX + "[redacted]"

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact_secrets(text: str) -> str:
    """``text`` with every credential-URL secret replaced by ``osscu_[redacted]``."""
    if CREDENTIAL_URL_SECRET_PREFIX not in text:
        return text
    return _SECRET.sub(REDACTED, text)


def _redacted_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_secrets(value)
    if isinstance(value, HttpRequest):
        # django.request passes the request as ``extra``; JSON log formatters print its repr,
        # which holds the path.
        return redact_secrets(repr(value))
    return value


class RedactSecretsLogFilter(logging.Filter):
    """Rewrites a record so that neither its message, its extras nor its traceback hold a secret.

    Attached to the console handler in ``config/settings/base.py`` and to gunicorn's loggers in
    ``config/gunicorn.conf.py``. The message is rendered here (``msg % args``) and then redacted,
    since a secret usually arrives as an argument (``"Not Found: %s", request.path``).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call; keep what we can, redacted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact_secrets(message), ()
        if record.exc_info:
            record.exc_text = redact_secrets(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact_secrets(record.exc_text)
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRIBUTES:
                setattr(record, name, _redacted_value(value))
        return True
