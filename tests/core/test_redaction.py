"""Credential-URL secrets are cut out of log lines, whoever writes them and however."""

import importlib.util
import io
import json
import logging
import string
import sys
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.test import RequestFactory
from hypothesis import given
from hypothesis import strategies as st

from core.redaction import REDACTED, RedactSecretsLogFilter, redact_secrets

URL_SAFE = string.ascii_letters + string.digits + "-_"
secrets_ = st.text(alphabet=URL_SAFE, min_size=43, max_size=43).map(lambda body: "osscu_" + body)
surroundings = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40)


@given(before=surroundings, secret=secrets_, after=surroundings)
def test_no_secret_survives_redaction_wherever_it_stands(before, secret, after):
    redacted = redact_secrets(f"{before}/api/uploads/sts-server/{secret}/{after}")
    assert secret[6:] not in redacted
    assert REDACTED in redacted
    assert redact_secrets(redacted) == redacted  # filters may run twice (handler and logger)


@given(text=st.text(max_size=200).filter(lambda text: "osscu_" not in text))
def test_text_without_a_secret_is_left_alone(text):
    assert redact_secrets(text) == text


def _filtered(record: logging.LogRecord) -> logging.LogRecord:
    assert RedactSecretsLogFilter().filter(record) is True
    return record


SECRET = "osscu_" + "s3cr3t-Value_" * 3 + "abcd"


def test_filter_redacts_message_arguments_extras_and_tracebacks():
    request = RequestFactory().get(f"/api/uploads/sts-server/{SECRET}/")
    try:
        raise ValueError(f"bad path /api/uploads/sts-server/{SECRET}/")
    except ValueError:
        record = logging.LogRecord(
            "django.request", logging.WARNING, __file__, 1, "Not Found: %s", None, None
        )
        record.exc_info = sys.exc_info()
    record.args = (request.path,)
    record.request = request
    record.status_code = 404
    record.path_copy = request.path

    _filtered(record)

    rendered = logging.Formatter("%(message)s %(request)s %(path_copy)s").format(record)
    assert SECRET not in rendered
    assert rendered.count(REDACTED) == 4  # message, request repr, extra string, traceback
    assert record.status_code == 404


@pytest.fixture
def console_output() -> Iterator[io.StringIO]:
    """What the configured console handler (settings.LOGGING) writes, captured."""
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "name", "") == "console")
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


@pytest.mark.django_db
def test_djangos_request_log_of_a_404_holds_no_secret(client, console_output):
    response = client.get(f"/api/uploads/sts-server/{SECRET}/extra/")  # no such route: Django logs it
    assert response.status_code == 404
    lines = console_output.getvalue()
    assert "Not Found" in lines and REDACTED in lines
    assert SECRET not in lines


def test_json_log_lines_hold_no_secret(console_output):
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "name", "") == "console")
    from pythonjsonlogger.json import JsonFormatter

    previous = handler.formatter
    handler.setFormatter(JsonFormatter("%(message)s"))
    try:
        request = RequestFactory().get(f"/api/uploads/sts-server/{SECRET}/")
        logging.getLogger("django.request").warning("Not Found: %s", request.path, extra={"request": request})
    finally:
        handler.setFormatter(previous)
    line = json.loads(console_output.getvalue().splitlines()[-1])
    assert SECRET not in json.dumps(line)
    assert REDACTED in line["message"] and REDACTED in line["request"]


def test_gunicorn_access_log_holds_no_secret(capsys, settings):
    from gunicorn.config import Config

    spec = importlib.util.spec_from_file_location(
        "gunicorn_conf", settings.BASE_DIR / "config/gunicorn.conf.py"
    )
    gunicorn_conf_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gunicorn_conf_module)
    config = Config()
    config.set("accesslog", "-")
    logger = gunicorn_conf_module.JsonAccessLogger(config)
    response = SimpleNamespace(status="200 OK", headers=[("X-Request-ID", "abc")], sent=10)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": f"/api/uploads/sts-server/{SECRET}/",
        "REMOTE_ADDR": "::1",
    }
    logger.access(response, None, environ, timedelta(milliseconds=3))
    logger.error("Error handling request %s", environ["PATH_INFO"])

    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    assert json.loads(out.out.splitlines()[-1])["path"] == f"/api/uploads/sts-server/{REDACTED}/"
    assert REDACTED in out.err
