"""`manage.py check` warns when the configured token lifetime needs a raised role maximum."""

from django.core.checks import run_checks


def ids() -> set[str]:
    return {message.id for message in run_checks()}


def test_a_duration_above_3600_warns_that_the_role_maximum_must_be_raised(settings):
    settings.ALIYUN_STS_DURATION_SECONDS = 7200
    warning = next(m for m in run_checks() if m.id == "uploads.W014")
    assert "above the 3600 s a new RAM role allows" in warning.msg
    assert "MaxSessionDuration to at least 7200" in warning.hint


def test_no_warning_at_or_below_3600(settings):
    for duration in (900, 3600):
        settings.ALIYUN_STS_DURATION_SECONDS = duration
        assert "uploads.W014" not in ids()
