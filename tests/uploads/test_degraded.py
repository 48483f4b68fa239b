"""Dependencies misbehaving: the API degrades or answers 503 JSON, never a 500, and still audits."""

import json
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from uploads.models import TokenIssuance
from uploads.services import reuse

pytestmark = pytest.mark.django_db
URL = "/api/uploads/sts-token/"
DEAD_REDIS = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens on the discard port
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }
}


def test_redis_down_degrades_to_reuse_within_one_process(jwt_client, settings):
    settings.CACHES = DEAD_REDIS
    first = jwt_client.post(URL)
    second = jwt_client.post(URL)  # the same worker: its own copy of the credentials
    reuse.local_credentials_clear()  # as another worker, which has no copy and no shared cache
    third = jwt_client.post(URL)

    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    assert first.json()["accessKeyId"] == second.json()["accessKeyId"]
    assert third.json()["accessKeyId"] != first.json()["accessKeyId"]  # no sharing without the cache
    assert list(TokenIssuance.objects.order_by("pk").values_list("outcome", flat=True)) == [
        "issued",
        "reused",
        "issued",
    ]


def test_readyz_reports_redis_down(client, settings):
    settings.CACHES = DEAD_REDIS
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["cache"] != "ok"


@pytest.fixture
def odd_sts(settings) -> Iterator[None]:
    """An STS stand-in answering 200 with a body that lacks the credentials (the sandbox never does)."""

    def app(environ, start_response):
        body = json.dumps({"RequestId": "odd-request"})
        return Response(body, content_type="application/json")(environ, start_response)

    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.ALIYUN_STS_ENDPOINT = f"127.0.0.1:{server.server_port}"
    yield
    server.shutdown()


def test_unexpected_sts_answer_is_503_and_audited(jwt_client, odd_sts):
    response = jwt_client.post(URL)
    assert response.status_code == 503
    assert response.json()["code"] == "sts_unavailable"
    assert TokenIssuance.objects.get().outcome == "failed"
