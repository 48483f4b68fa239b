"""POST /api/uploads/post-policy/: a server-signed form, posted to the sandbox OSS as a browser posts it.

The form is sent with ``requests`` as plain multipart/form-data (the fields in the order the API gives
them, the file last), exactly what a ``<form>`` or ``fetch(FormData)`` sends; what got stored is read
back with oss2 and the server's own key.
"""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.conf import settings as django_settings
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from sandbox.tokens import secret_for
from tests.pngs import png_bytes
from uploads.models import TokenIssuance
from uploads.services.reuse import session_policy_build

URL = "/api/uploads/post-policy/"
FIELD_NAMES = [
    "key",
    "policy",
    "x-oss-signature-version",
    "x-oss-credential",
    "x-oss-date",
    "x-oss-signature",
    "x-oss-security-token",
    "success_action_status",
    "Content-Type",
    "x-oss-content-type",
    "Content-Disposition",
    "x-oss-forbid-overwrite",
]

pytestmark = pytest.mark.django_db


def ask(client: APIClient, content_type: str = "image/png", size: int = 100, **extra: object):
    return client.post(URL, {"contentType": content_type, "size": size, **extra}, format="json")


def form_for(client: APIClient, content_type: str = "image/png", size: int = 100, **extra: object) -> dict:
    response = ask(client, content_type, size, **extra)
    assert response.status_code == 200, response.content
    return response.json()


def send(form: dict, content: bytes, *, filename: str = "me.png", file_type: str = "image/png", **changes):
    """POST the form as a browser does: every field as given (or changed), then the file, last."""
    fields = {**form["fields"], **changes}
    return requests.post(
        form["url"],
        data=list(fields.items()),
        files={"file": (filename, content, file_type)},
        timeout=10,
    )


def oss_code(answer: requests.Response) -> str:
    return answer.text.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in answer.text else ""


def test_form_upload_within_limit_is_stored(jwt_client, user, sandbox, server_oss):
    image = png_bytes(8, 8)
    form = form_for(jwt_client, size=len(image))

    answer = send(form, image)

    assert answer.status_code == 204, answer.text
    assert list(form["fields"]) == FIELD_NAMES
    assert form["key"] == form["fields"]["key"]
    assert form["key"].startswith(f"user/{user.pk}/avatars/") and form["key"].endswith(".png")
    assert form["url"] == f"{sandbox.oss_endpoint}/{django_settings.ALIYUN_OSS_BUCKET}/"
    assert form["maxBytes"] == len(image)  # the declared size: the form carries no more
    stored = server_oss.get_object(form["key"])
    assert stored.read() == image
    assert stored.headers["Content-Type"] == "image/png"


def test_the_form_keeps_to_what_the_policy_says(jwt_client, user):
    form = form_for(jwt_client, size=100)
    policy = json.loads(base64.b64decode(form["fields"]["policy"]))
    conditions = policy["conditions"]

    assert {"bucket": django_settings.ALIYUN_OSS_BUCKET} in conditions
    assert ["eq", "$key", form["key"]] in conditions
    assert ["content-length-range", 1, form["maxBytes"]] in conditions
    assert ["eq", "$content-type", "image/png"] in conditions
    assert ["eq", "$x-oss-forbid-overwrite", "true"] in conditions
    assert policy["expiration"].replace(".000Z", "Z") == form["expiration"]
    for name in ("x-oss-signature-version", "x-oss-credential", "x-oss-date", "x-oss-security-token"):
        assert {name: form["fields"][name]} in conditions
    issued_at = datetime.strptime(form["fields"]["x-oss-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    expires_at = datetime.fromisoformat(form["expiration"])
    assert timedelta(minutes=9) < expires_at - issued_at <= timedelta(minutes=10)


def test_one_byte_over_the_limit_is_refused_by_storage_and_nothing_is_stored(
    jwt_client, settings, server_oss
):
    settings.AVATAR_MAX_BYTES = 1000
    form = form_for(jwt_client, size=1000)

    answer = send(form, b"\x89PNG" + b"x" * 997)  # 1001 bytes

    assert answer.status_code == 400
    assert oss_code(answer) == "EntityTooLarge"
    assert not server_oss.object_exists(form["key"])
    assert send(form, b"").status_code == 400  # and an empty file is too small
    assert not server_oss.object_exists(form["key"])


def test_another_key_or_another_type_is_refused(jwt_client, user, server_oss):
    form = form_for(jwt_client)
    other_key = form["key"].replace(".png", "-2.png")

    renamed = send(form, b"png", key=other_key)
    retyped = send(form, b"<script>", **{"Content-Type": "text/html"}, file_type="text/html")
    elsewhere = send(form, b"png", key=f"user/{user.pk + 1}/avatars/x.png")

    for answer in (renamed, retyped, elsewhere):
        assert answer.status_code == 403, answer.text
        assert oss_code(answer) == "AccessDenied"
        assert "Invalid according to Policy" in answer.text
    assert not server_oss.object_exists(form["key"])
    assert not server_oss.object_exists(other_key)


def test_the_same_form_cannot_be_used_twice(jwt_client, server_oss):
    form = form_for(jwt_client)
    assert send(form, b"first").status_code == 204

    again = send(form, b"second")

    assert again.status_code == 409
    assert oss_code(again) == "FileAlreadyExists"
    assert server_oss.get_object(form["key"]).read() == b"first"


def test_dropping_forbid_overwrite_from_the_form_is_refused(jwt_client):
    form = form_for(jwt_client)
    fields = {name: value for name, value in form["fields"].items() if name != "x-oss-forbid-overwrite"}

    answer = send({**form, "fields": fields}, b"png")

    assert answer.status_code == 403
    assert "Invalid according to Policy" in answer.text


def test_no_secret_in_the_response(jwt_client, sandbox):
    response = ask(jwt_client)
    body = response.json()
    access_key_id = body["fields"]["x-oss-credential"].split("/")[0]
    secret = secret_for(sandbox.config, access_key_id)

    assert access_key_id.startswith("STS.")
    assert secret not in response.content.decode()
    assert secret not in base64.b64decode(body["fields"]["policy"]).decode()
    assert django_settings.ALIYUN_ACCESS_KEY_SECRET not in response.content.decode()
    assert "accessKeySecret" not in body
    assert response["Cache-Control"] == "no-store"
    row = TokenIssuance.objects.get()
    assert secret not in json.dumps(row.policy) and body["fields"]["x-oss-security-token"] not in str(
        vars(row)
    )


def test_audited_with_the_grant_and_the_key(jwt_client, user):
    form = form_for(jwt_client)

    row = TokenIssuance.objects.get()
    assert (row.grant, row.outcome, row.auth_method, row.username) == (
        "post_policy",
        "issued",
        "jwt",
        "alice",
    )
    assert row.object_key == form["key"]
    assert row.prefix == f"user/{user.pk}/"
    assert row.access_key_id == form["fields"]["x-oss-credential"].split("/")[0]
    assert row.expiration.isoformat().replace("+00:00", "Z") == form["expiration"]
    assert row.policy == session_policy_build(user_id=user.pk)


def test_signed_with_the_same_reused_credentials_as_sts_token(jwt_client, sandbox):
    before = sandbox.config.faults.snapshot()["issued"]
    credentials = jwt_client.post("/api/uploads/sts-token/").json()

    form = form_for(jwt_client)

    assert form["fields"]["x-oss-credential"].split("/")[0] == credentials["accessKeyId"]
    assert form["fields"]["x-oss-security-token"] == credentials["securityToken"]
    assert sandbox.config.faults.snapshot()["issued"] == before + 1
    grants = list(TokenIssuance.objects.order_by("id").values_list("grant", "outcome"))
    assert grants == [("sts_token", "issued"), ("post_policy", "reused")]


@pytest.mark.parametrize(
    ("content_type", "filename", "extension"),
    [
        ("image/png", "", ".png"),
        ("image/jpeg", "Holiday.JPEG", ".jpeg"),
        ("image/jpeg", "photo.jpg", ".jpg"),
        ("image/jpeg", "photo.png", ".jpg"),
        ("image/png", "evil.html", ".png"),
        ("image/png", "../../x.png", ".png"),
        ("image/webp", "a.b.c", ".webp"),
        (" Image/GIF ", "anim.gif", ".gif"),
    ],
)
def test_the_key_keeps_only_a_safe_extension(jwt_client, user, content_type, filename, extension):
    form = form_for(jwt_client, content_type, filename=filename)
    name = form["key"].removeprefix(f"user/{user.pk}/avatars/")
    assert "/" not in name and len(name) == 32 + len(extension) and name.endswith(extension)
    assert form["fields"]["Content-Type"] == content_type.strip().lower()


def test_two_forms_never_share_a_key(jwt_client):
    assert form_for(jwt_client)["key"] != form_for(jwt_client)["key"]


def test_a_form_upload_can_become_the_avatar(jwt_client):
    image = png_bytes(4, 4)
    form = form_for(jwt_client, size=len(image))
    assert send(form, image).status_code == 204

    confirmed = jwt_client.post("/api/me/avatar/", {"key": form["key"]}, format="json")

    assert confirmed.status_code == 200, confirmed.content
    assert requests.get(confirmed.json()["avatarUrl"], timeout=5).content == image


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"contentType": "text/html", "size": 10}, "unsupported_content_type"),
        ({"contentType": "image/svg+xml", "size": 10}, "unsupported_content_type"),
        ({"contentType": "image/png", "size": 10, "purpose": "backup"}, "unknown_purpose"),
        ({"contentType": "image/png", "size": 0}, "invalid"),
        ({"contentType": 7, "size": 10}, "invalid"),
        ({"size": 10}, "invalid"),
        ({"contentType": "image/png", "size": 10, "filename": "x" * 256}, "invalid"),
    ],
)
def test_bad_requests_are_400_and_audited(jwt_client, body, code):
    response = jwt_client.post(URL, body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    row = TokenIssuance.objects.get()
    assert (row.grant, row.outcome, row.error_code, row.access_key_id) == ("post_policy", "refused", code, "")


def test_declared_size_above_the_limit_is_400(jwt_client, settings):
    settings.AVATAR_MAX_BYTES = 1000
    response = ask(jwt_client, size=1001)
    assert response.status_code == 400
    assert response.json()["code"] == "object_too_large"
    assert TokenIssuance.objects.get().error_code == "object_too_large"


def test_session_user_needs_csrf_token(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)

    refused = client.post(URL, {"contentType": "image/png", "size": 10}, format="json")
    client.get("/")
    allowed = client.post(
        URL,
        {"contentType": "image/png", "size": 10},
        format="json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )

    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    assert allowed.status_code == 200, allowed.content
    assert TokenIssuance.objects.get().auth_method == "session"


def test_anonymous_is_401_and_not_audited(api_client):
    response = api_client.post(URL, {"contentType": "image/png", "size": 10}, format="json")
    assert response.status_code == 401
    assert not TokenIssuance.objects.exists()


def test_throttled_per_user_and_audited(jwt_client, monkeypatch):
    monkeypatch.setattr(
        ScopedRateThrottle,
        "THROTTLE_RATES",
        {"post_policy": "1/min", "sts_token": "100/min", "login": "100/min"},
    )
    assert ask(jwt_client).status_code == 200

    refused = ask(jwt_client)

    assert refused.status_code == 429 and refused.json()["code"] == "throttled"
    assert jwt_client.post("/api/uploads/sts-token/").status_code == 200  # its own budget
    rows = list(TokenIssuance.objects.order_by("id").values_list("grant", "outcome", "error_code"))
    assert rows[:2] == [("post_policy", "issued", ""), ("post_policy", "refused", "throttled")]


def test_sts_failure_is_503_and_audited(jwt_client, sandbox, settings):
    settings.ALIYUN_STS_MAX_ATTEMPTS = 1
    sandbox.config.faults.configure(fail_every=1)

    response = ask(jwt_client)

    assert response.status_code == 503 and response.json()["code"] == "sts_unavailable"
    row = TokenIssuance.objects.get()
    assert (row.grant, row.outcome, row.access_key_id) == ("post_policy", "failed", "")
    assert row.object_key.startswith("user/")


def test_schema_describes_the_form(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/uploads/post-policy/"]["post"]
    assert operation["operationId"] == "uploads_post_policy_create"
    fields = schema["components"]["schemas"]["PostPolicy"]["properties"]["fields"]
    assert fields["required"] == FIELD_NAMES
