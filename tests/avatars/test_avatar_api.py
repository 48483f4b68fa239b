"""POST /api/me/avatar/ and /api/me/avatar/upload-key/: the server confirms uploads with oss2 against the sandbox.

Objects are put into the sandbox the way a browser does it, with the STS credentials the API hands out,
so a key the token cannot write is also one the tests cannot plant.
"""

import oss2
import pytest
import requests
from rest_framework.test import APIClient

from avatars.formats import AVATAR_CONTENT_TYPES
from tests.pngs import png_bytes

URL = "/api/me/avatar/"
KEY_URL = "/api/me/avatar/upload-key/"

pytestmark = pytest.mark.django_db


def user_bucket(client: APIClient) -> oss2.Bucket:
    """An oss2 bucket holding the caller's own STS credentials, as a browser or app would."""
    body = client.post("/api/uploads/sts-token/").json()
    auth = oss2.StsAuth(body["accessKeyId"], body["accessKeySecret"], body["securityToken"])
    return oss2.Bucket(auth, body["endpoint"], body["bucket"])


def put(client: APIClient, key: str, data: bytes, content_type: str) -> None:
    user_bucket(client).put_object(key, data, headers={"Content-Type": content_type})


def upload_key(client: APIClient, content_type: str = "image/png", size: int = 100) -> str:
    response = client.post(KEY_URL, {"contentType": content_type, "size": size}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["key"]


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert response.json()["detail"]


# --- upload-key ----------------------------------------------------------------------------------


def test_upload_key_is_random_under_own_avatars_folder(jwt_client, user, settings):
    response = jwt_client.post(KEY_URL, {"contentType": "image/png", "size": 1234}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["key"].startswith(f"user/{user.pk}/avatars/") and body["key"].endswith(".png")
    assert body["maxBytes"] == settings.AVATAR_MAX_BYTES
    assert upload_key(jwt_client) != upload_key(jwt_client)


@pytest.mark.parametrize("content_type", sorted(AVATAR_CONTENT_TYPES))
def test_upload_key_extension_follows_type(jwt_client, content_type):
    assert upload_key(jwt_client, content_type).endswith(AVATAR_CONTENT_TYPES[content_type])


def test_upload_key_refuses_a_non_image_type(jwt_client):
    response = jwt_client.post(KEY_URL, {"contentType": "text/html", "size": 10}, format="json")
    assert_error(response, 400, "not_an_image")


def test_upload_key_refuses_a_file_over_the_limit(jwt_client, settings):
    settings.AVATAR_MAX_BYTES = 1000
    response = jwt_client.post(KEY_URL, {"contentType": "image/png", "size": 1001}, format="json")
    assert_error(response, 400, "object_too_large")


def test_upload_key_needs_type_and_size(jwt_client):
    assert_error(jwt_client.post(KEY_URL, {}, format="json"), 400, "invalid")


# --- completion: refusals --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key_for",
    [
        lambda me, other: "avatars/x.png",
        lambda me, other: f"user/{other}/avatars/x.png",
        lambda me, other: f"user/{me}0/avatars/x.png",  # user/7* would also match user/70/
        lambda me, other: f"user/{me}",
        lambda me, other: f"/user/{me}/x.png",
    ],
    ids=["no-prefix", "other-user", "prefix-lookalike", "prefix-without-slash", "leading-slash"],
)
def test_key_outside_own_prefix_is_refused(jwt_client, user, other_user, key_for):
    key = key_for(user.pk, other_user.pk)
    response = jwt_client.post(URL, {"key": key}, format="json")

    assert response.status_code in (400, 403), response.content
    assert response.json()["code"] in ("outside_prefix", "invalid")
    user.refresh_from_db()
    assert user.avatar_key == ""


def test_other_users_real_object_is_refused(jwt_client, user, other_user, password):
    other = APIClient()
    other.force_login(other_user)
    other_key = f"user/{other_user.pk}/avatars/theirs.png"
    put(other, other_key, png_bytes(), "image/png")

    assert_error(jwt_client.post(URL, {"key": other_key}, format="json"), 403, "outside_prefix")


def test_symlink_to_another_users_image_is_refused(jwt_client, user, other_user, password):
    """PutSymlink needs only oss:PutObject on the link (Alibaba's PutSymlink "Permissions"), so a token
    may plant in its own folder a link to any key of the bucket. HEAD and GET of the link answer with
    the target's size, ETag and bytes, and CopyObject copies the link itself: confirming it would make
    the server-signed avatar URL serve the other user's file."""
    other = APIClient()
    other.force_login(other_user)
    secret = png_bytes(3, 3)
    other_key = f"user/{other_user.pk}/private.png"
    put(other, other_key, secret, "image/png")
    link = f"user/{user.pk}/avatars/link.png"
    user_bucket(jwt_client).put_symlink(other_key, link)

    response = jwt_client.post(URL, {"key": link}, format="json")

    assert_error(response, 400, "not_an_image")
    user.refresh_from_db()
    assert user.avatar_key == ""


@pytest.mark.parametrize("target", ["link", "nothing"])
def test_a_link_to_a_link_or_to_nothing_is_refused_as_not_an_image(jwt_client, user, target, caplog):
    """OSS answers HEAD of a link to a link with 400 InvalidTargetType, and of a link to nothing with 404
    SymlinkTargetNotExist: the user's doing, so a 400 not_an_image like any link, not a 502 that blames
    the server's configuration (and logs an error)."""
    bucket = user_bucket(jwt_client)
    if target == "link":
        bucket.put_symlink(f"user/{user.pk}/anything.png", f"user/{user.pk}/first-link.png")
        link_target = f"user/{user.pk}/first-link.png"
    else:
        link_target = f"user/{user.pk}/absent.png"
    link = f"user/{user.pk}/avatars/link.png"
    bucket.put_symlink(link_target, link)

    with caplog.at_level("ERROR"):
        response = jwt_client.post(URL, {"key": link}, format="json")

    assert_error(response, 400, "not_an_image")
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


@pytest.mark.parametrize(
    "suffix",
    ["avatars/../../2/x.png", "avatars/./x.png", "avatars//x.png", "avatars/", "a\\b.png", "a\nb.png"],
)
def test_malformed_keys_inside_prefix_are_invalid(jwt_client, user, suffix):
    response = jwt_client.post(URL, {"key": f"user/{user.pk}/{suffix}"}, format="json")
    assert_error(response, 400, "invalid")


@pytest.mark.parametrize("body", [{}, {"key": ""}, {"key": 7}, {"key": "x" * 2000}])
def test_missing_empty_or_overlong_key_is_invalid(jwt_client, body):
    assert_error(jwt_client.post(URL, body, format="json"), 400, "invalid")


def test_key_over_oss_limit_in_bytes_is_invalid(jwt_client, user):
    key = f"user/{user.pk}/" + "é" * 600  # 600 characters, 1200 bytes
    assert_error(jwt_client.post(URL, {"key": key}, format="json"), 400, "invalid")


def test_missing_object_is_refused(jwt_client, user):
    key = upload_key(jwt_client)
    assert_error(jwt_client.post(URL, {"key": key}, format="json"), 400, "object_not_found")
    user.refresh_from_db()
    assert user.avatar_key == ""


def test_too_large_object_is_refused(jwt_client, user, settings):
    data = png_bytes(40, 40)
    settings.AVATAR_MAX_BYTES = len(data) - 1
    key = f"user/{user.pk}/avatars/big.png"
    put(jwt_client, key, data, "image/png")

    assert_error(jwt_client.post(URL, {"key": key}, format="json"), 400, "object_too_large")
    user.refresh_from_db()
    assert user.avatar_key == ""


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"<html><script>alert(1)</script></html>", "text/html"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),  # scripts run in SVG
        (b"<html>not really a png</html>", "image/png"),  # the declared type is only a claim
        (b"", "image/png"),
    ],
    ids=["html", "svg", "html-claiming-png", "empty"],
)
def test_non_image_object_is_refused(jwt_client, user, data, content_type):
    key = f"user/{user.pk}/avatars/file"
    put(jwt_client, key, data, content_type)

    assert_error(jwt_client.post(URL, {"key": key}, format="json"), 400, "not_an_image")
    user.refresh_from_db()
    assert user.avatar_key == ""


def test_malformed_json_is_a_parse_error(jwt_client):
    response = jwt_client.post(URL, data="{not json", content_type="application/json")
    assert_error(response, 400, "parse_error")


@pytest.mark.parametrize("url", [URL, KEY_URL])
def test_anonymous_is_refused(api_client, url):
    assert_error(api_client.post(url, {"key": "user/1/x.png"}, format="json"), 401, "not_authenticated")


def test_session_without_csrf_is_refused(user, password):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(URL, {"key": f"user/{user.pk}/x.png"}, format="json")
    assert_error(response, 403, "permission_denied")


def test_oss_unreachable_is_503(jwt_client, user, settings):
    settings.ALIYUN_OSS_ENDPOINT = "http://127.0.0.1:1"
    response = jwt_client.post(URL, {"key": f"user/{user.pk}/avatars/x.png"}, format="json")

    assert_error(response, 503, "oss_unavailable")
    assert response["Retry-After"] == "5"


def test_server_key_refused_by_oss_is_502(jwt_client, user, settings):
    settings.ALIYUN_ACCESS_KEY_SECRET = "not-the-secret"
    response = jwt_client.post(URL, {"key": f"user/{user.pk}/avatars/x.png"}, format="json")
    assert_error(response, 502, "oss_rejected")


# --- completion: success ---------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["image/png", "image/jpeg", "image/gif", "image/webp"])
def test_each_accepted_format(jwt_client, user, content_type):
    data = {
        "image/png": png_bytes(),
        "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32,
        "image/gif": b"GIF89a" + b"\x00" * 32,
        "image/webp": b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 32,
    }[content_type]
    key = upload_key(jwt_client, content_type, len(data))
    put(jwt_client, key, data, content_type)

    assert jwt_client.post(URL, {"key": key}, format="json").status_code == 200


def test_confirmed_upload_becomes_the_avatar(jwt_client, user, sandbox):
    assert jwt_client.get("/api/me/").json()["avatarUrl"] is None
    data = png_bytes(8, 8)
    key = upload_key(jwt_client, "image/png", len(data))
    put(jwt_client, key, data, "image/png")

    response = jwt_client.post(URL, {"key": key}, format="json")

    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    user.refresh_from_db()
    assert user.avatar_key.startswith(f"avatars/{user.pk}/") and user.avatar_key.endswith(".png")
    me = jwt_client.get("/api/me/")
    assert me["Cache-Control"] == "no-store"
    avatar_url = me.json()["avatarUrl"]
    assert avatar_url.startswith(f"{sandbox.oss_endpoint}/")
    fetched = requests.get(avatar_url, timeout=5)  # anyone holding the URL, no credentials of their own
    assert fetched.status_code == 200
    assert fetched.content == data
    assert fetched.headers["Content-Type"] == "image/png"


def test_avatar_url_expires_and_bucket_stays_private(jwt_client, user, sandbox):
    data = png_bytes()
    key = upload_key(jwt_client, "image/png", len(data))
    put(jwt_client, key, data, "image/png")
    jwt_client.post(URL, {"key": key}, format="json")

    avatar_url = jwt_client.get("/api/me/").json()["avatarUrl"]
    assert "x-oss-expires=600" in avatar_url
    unsigned = f"{sandbox.oss_endpoint}/{sandbox.config.bucket}/{key}"
    assert requests.get(unsigned, timeout=5).status_code == 403


def test_openapi_documents_both_endpoints_and_their_errors(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    confirm = schema["paths"]["/api/me/avatar/"]["post"]
    assert {"200", "400", "401", "403", "502", "503"} <= set(confirm["responses"])
    described = " ".join(response["description"] for response in confirm["responses"].values())
    for code in ("outside_prefix", "object_not_found", "object_too_large", "not_an_image", "oss_unavailable"):
        assert f"`{code}`" in described  # each error status names its codes
    assert "200" in schema["paths"]["/api/me/avatar/upload-key/"]["post"]["responses"]


# --- a confirmed avatar cannot be swapped afterwards -------------------------------------------------


def test_overwriting_the_upload_after_confirmation_does_not_change_the_avatar(jwt_client, user):
    data = png_bytes(8, 8)
    key = upload_key(jwt_client, "image/png", len(data))
    put(jwt_client, key, data, "image/png")
    assert jwt_client.post(URL, {"key": key}, format="json").status_code == 200

    put(jwt_client, key, b"<script>alert(1)</script>", "text/html")  # the token can still write its prefix

    fetched = requests.get(jwt_client.get("/api/me/").json()["avatarUrl"], timeout=5)
    assert fetched.content == data
    assert fetched.headers["Content-Type"] == "image/png"


def test_the_token_cannot_write_the_confirmed_avatar(jwt_client, user):
    data = png_bytes(8, 8)
    key = upload_key(jwt_client, "image/png", len(data))
    put(jwt_client, key, data, "image/png")
    jwt_client.post(URL, {"key": key}, format="json")
    user.refresh_from_db()

    with pytest.raises(oss2.exceptions.AccessDenied):
        put(jwt_client, user.avatar_key, b"swapped", "image/png")


def test_changing_the_avatar_removes_the_previous_copy_and_the_upload(jwt_client, user, sandbox):
    from aliyun import oss

    keys = []
    for size in (8, 9):
        data = png_bytes(size, size)
        key = upload_key(jwt_client, "image/png", len(data))
        put(jwt_client, key, data, "image/png")
        assert jwt_client.post(URL, {"key": key}, format="json").status_code == 200
        user.refresh_from_db()
        keys.append((key, user.avatar_key))

    (first_upload, first_avatar), (second_upload, second_avatar) = keys
    for gone in (first_upload, first_avatar, second_upload):
        with pytest.raises(oss.OssError) as excinfo:
            oss.head_object(gone)
        assert excinfo.value.code == "object_not_found"
    assert oss.head_object(second_avatar).size > 0


def test_object_changed_between_check_and_copy_is_409(jwt_client, user, monkeypatch):
    from aliyun import oss

    data = png_bytes(8, 8)
    key = upload_key(jwt_client, "image/png", len(data))
    put(jwt_client, key, data, "image/png")
    real_head = oss.head_object

    def head_then_swap(k):  # the browser overwrites the object right after the server looked at it
        info = real_head(k)
        put(jwt_client, key, png_bytes(9, 9), "image/png")
        return info

    monkeypatch.setattr(oss, "head_object", head_then_swap)
    response = jwt_client.post(URL, {"key": key}, format="json")
    assert_error(response, 409, "object_changed")
    user.refresh_from_db()
    assert user.avatar_key == ""
