"""`aliyun_doctor` uploads its probe and reports whether the probe's OSS event reached the receiver,
and how long it took: the sandbox pushes to a live server, as MNS pushes to the deployment."""

import io

import pytest
from django.core.management import call_command

from aliyun.mns import local_certificates_clear
from tests.operators.test_aliyun_doctor import results

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_doctor_sees_its_probe_event_arrive(fresh_sandbox, live_server, settings):
    call_command("aliyun_setup", "--apply", "--yes", stdout=io.StringIO())
    settings.OSS_EVENTS_DOCTOR_WAIT_SECONDS = 5
    settings.OSS_EVENTS_CERT_URL_PREFIXES = [f"{fresh_sandbox.oss_endpoint}/__sandbox__/"]
    local_certificates_clear()
    fresh_sandbox.config.event_endpoint = f"{live_server.url}/api/uploads/oss-events/"

    status, checks = results()

    assert checks["event"]["ok"], checks["event"]
    assert checks["event"]["detail"].startswith("arrived ")
    assert status == 0


def test_the_doctor_says_when_no_event_comes(fresh_sandbox, settings):
    call_command("aliyun_setup", "--apply", "--yes", stdout=io.StringIO())
    settings.OSS_EVENTS_DOCTOR_WAIT_SECONDS = 1

    status, checks = results()

    assert status == 1 and not checks["event"]["ok"]
    assert "aliyun_setup" in checks["event"]["fix"]
