"""Bearer secrets that travel in URLs are cut out of every log line, and so are the secrets Alibaba's SDKs
put in theirs.

A credential URL (``/api/uploads/sts-server/<secret>/``, see ``uploads/services/credential_urls.py``) must carry its
secret in the path, because Alibaba's mobile credential providers can only GET a URL. Every secret
of that kind starts with ``CREDENTIAL_URL_SECRET_PREFIX`` so it can be recognised wherever it turns
up (an access log line, Django's "Not Found: <path>", an exception message, a pasted URL) and
replaced by ``osscu_[redacted]``. The prefix is also what secret scanners can look for.

Alibaba's SDKs log through loggers of their own (``credentials``, ``alibabacloud-tea``,
``darabonba-core``): alibabacloud-credentials warns with the full request URL when it fails to refresh
the server's credentials (``OIDCToken=…``, ``SecurityToken=…``, ``Signature=…`` in the query), and with
the answer's body (which, from a credentials URI, can hold ``AccessKeySecret``). ``CloudSecretsLogFilter``
sits on those loggers (``config/settings/base.py``, ``aliyun/credentials.py``) and cuts out every query
string, every secret-named JSON or ``name=value`` field and anything shaped like a JWT.
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


# Field names whose values are secrets wherever an SDK prints them: a query or form (``name=value``), JSON or
# a Python repr (``"name": "value"``, ``'name': 'value'``). Matched case-insensitively.
_SECRET_FIELDS = (
    "OIDCToken|SecurityToken|Security-Token|x-oss-security-token|x-acs-security-token|AccessKeySecret"
    "|access_key_secret|security_token|Signature|x-oss-signature|Authorization|Credential"
)
_SECRET_QUOTED_FIELD = re.compile(
    rf"""(["']?(?:{_SECRET_FIELDS})["']?\s*[:=]\s*)(["'])(.*?)\2""", re.IGNORECASE
)
_SECRET_BARE_FIELD = re.compile(rf"""\b((?:{_SECRET_FIELDS})=)[^&\s'"<>,]+""", re.IGNORECASE)
# A JSON Web Token anywhere (an OIDC token read from the token file): three base64url parts.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# Everything after a "?" up to white space or a quote: the query of a URL or of a bare path.
_QUERY = re.compile(r"\?[^\s'\"<>]*")


def redact_cloud_secrets(text: str) -> str:
    """``text`` as it may be logged from an Alibaba SDK: no query string, no secret-named field's value,
    no JWT, and no credential-URL secret (``redact_secrets``). Over-redacts on purpose."""
    text = _SECRET_QUOTED_FIELD.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]{m.group(2)}", text)
    text = _SECRET_BARE_FIELD.sub(r"\1[redacted]", text)
    text = _JWT.sub("[redacted-jwt]", text)
    return redact_secrets(_QUERY.sub("?[redacted]", text))


def _redacted_value(value: Any, redact: Any = redact_secrets) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, HttpRequest):
        # django.request passes the request as ``extra``; JSON log formatters print its repr,
        # which holds the path.
        return redact(repr(value))
    return value


class RedactSecretsLogFilter(logging.Filter):
    """Rewrites a record so that neither its message, its extras nor its traceback hold a secret.

    Attached to the console handler in ``config/settings/base.py`` and to gunicorn's loggers in
    ``config/gunicorn.conf.py``. The message is rendered here (``msg % args``) and then redacted,
    since a secret usually arrives as an argument (``"Not Found: %s", request.path``).
    """

    @staticmethod
    def redact(text: str) -> str:
        return redact_secrets(text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call; keep what we can, redacted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = self.redact(message), ()
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRIBUTES:
                setattr(record, name, _redacted_value(value, self.redact))
        return True


class CloudSecretsLogFilter(RedactSecretsLogFilter):
    """``RedactSecretsLogFilter`` with ``redact_cloud_secrets``: on the loggers of Alibaba's SDKs, whose
    messages are request URLs, headers and answer bodies."""

    @staticmethod
    def redact(text: str) -> str:
        return redact_cloud_secrets(text)
