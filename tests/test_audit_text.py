"""Whatever text a request brings, its audit row is written: user agents with characters PostgreSQL
cannot store (NUL) included, on every audited endpoint (core.text.storable_text)."""

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.throttling import rate_limits_clear
from avatars.models import AvatarChange
from core.text import NUL_STAND_IN
from uploads.models import CredentialUrl, TokenIssuance

pytestmark = pytest.mark.django_db

USER_AGENTS = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40).map(
    lambda text: f"{text}\x00{text}"
)


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(user_agent=USER_AGENTS)
def test_every_audited_endpoint_keeps_its_row_whatever_the_user_agent(jwt_client, user_agent):
    rate_limits_clear()  # one user sends every example
    before = (TokenIssuance.objects.count(), AvatarChange.objects.count(), CredentialUrl.objects.count())

    token = jwt_client.post("/api/uploads/sts-token/", {}, format="json", HTTP_USER_AGENT=user_agent)
    key = jwt_client.post(
        "/api/me/avatar/upload-key/",
        {"contentType": "image/png", "size": 10},
        format="json",
        HTTP_USER_AGENT=user_agent,
    )
    url = jwt_client.post("/api/uploads/sts-server-url/", {}, format="json", HTTP_USER_AGENT=user_agent)

    assert [token.status_code, key.status_code] == [200, 200], (token.content, key.content)
    assert url.status_code in (200, 201), url.content
    after = (TokenIssuance.objects.count(), AvatarChange.objects.count(), CredentialUrl.objects.count())
    assert after == tuple(count + 1 for count in before)
    for model in (TokenIssuance, AvatarChange, CredentialUrl):
        stored = model.objects.order_by("-pk").first().user_agent
        assert "\x00" not in stored and NUL_STAND_IN in stored
