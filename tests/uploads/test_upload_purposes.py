"""Upload purposes as configuration (UPLOAD_PURPOSES): the form each one signs, what OSS answers it with,
and the system check that names a bad entry.

The uploads are posted as multipart/form-data only (``requests`` with ``files=``), which is all WeChat's
``wx.uploadFile`` and uni-app's ``uni.uploadFile`` can send: the signed fields as form fields, the file as
the part named ``file``.
"""

import base64
import json

import pytest
import requests
from django.core.checks import run_checks
from hypothesis import given
from hypothesis import strategies as st

from uploads.purposes import purpose_setting_problems, upload_purpose_get, upload_purpose_names

URL = "/api/uploads/post-policy/"
PDF = b"%PDF-1.4\n" + b"p" * 300

pytestmark = pytest.mark.django_db


def form_for(client, **body) -> dict:
    response = client.post(URL, body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def mini_program_upload(form: dict, content: bytes, filename: str) -> requests.Response:
    """What wx.uploadFile / uni.uploadFile send: formData as fields, the file under `name: "file"`."""
    return requests.post(form["url"], data=form["fields"], files={"file": (filename, content)}, timeout=10)


def test_an_attachment_from_a_multipart_only_client_gets_200_with_an_empty_body(jwt_client, user, server_oss):
    form = form_for(
        jwt_client, contentType="application/pdf", size=len(PDF), filename="report.PDF", purpose="attachment"
    )
    assert form["key"].startswith(f"user/{user.pk}/attachments/") and form["key"].endswith(".pdf")
    assert form["fields"]["success_action_status"] == "200"
    policy = json.loads(base64.b64decode(form["fields"]["policy"]))
    assert ["eq", "$success_action_status", "200"] in policy["conditions"]

    answer = mini_program_upload(form, PDF, "report.PDF")

    assert answer.status_code == 200, answer.text
    assert answer.content == b""  # "PostObject": 200 and 204 answer with an empty body
    stored = server_oss.head_object(form["key"])
    assert stored.content_length == len(PDF)
    assert stored.content_type == "application/pdf"
    assert stored.headers["Content-Disposition"] == "attachment"


def test_the_status_is_configuration_201_answers_the_xml_body(jwt_client, user, settings):
    settings.UPLOAD_PURPOSES = {
        **settings.UPLOAD_PURPOSES,
        "attachment": {**settings.UPLOAD_PURPOSES["attachment"], "success_action_status": 201},
    }
    form = form_for(jwt_client, contentType="text/plain", size=5, filename="a.txt", purpose="attachment")
    answer = mini_program_upload(form, b"hello", "a.txt")
    assert answer.status_code == 201, answer.text
    assert f"<Key>{form['key']}</Key>" in answer.text and "<ETag>" in answer.text


def test_avatars_keep_204_and_the_avatar_apps_own_types_and_limit(jwt_client, settings):
    avatar = upload_purpose_get("avatar")
    assert avatar.success_action_status == 204 and avatar.folder == "avatars/"
    assert set(avatar.content_types) == {"image/png", "image/jpeg", "image/gif", "image/webp"}
    settings.AVATAR_MAX_BYTES = 1234
    assert avatar.max_bytes() == 1234
    refused = jwt_client.post(URL, {"contentType": "application/pdf", "size": 10}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "unsupported_content_type"


def test_a_purpose_the_settings_do_not_name_is_unknown(jwt_client, settings):
    settings.UPLOAD_PURPOSES = {"avatar": {"folder": "avatars/"}}
    assert upload_purpose_names() == ["avatar"]
    refused = jwt_client.post(
        URL, {"contentType": "application/pdf", "size": 10, "purpose": "attachment"}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "unknown_purpose" and "known: avatar" in refused.json()["detail"]


def test_attachment_limits_are_the_settings(jwt_client):
    too_big = jwt_client.post(
        URL,
        {"contentType": "application/pdf", "size": 20 * 1024 * 1024 + 1, "purpose": "attachment"},
        format="json",
    )
    assert too_big.status_code == 400 and too_big.json()["code"] == "object_too_large"
    html = jwt_client.post(
        URL, {"contentType": "text/html", "size": 10, "purpose": "attachment"}, format="json"
    )
    assert html.status_code == 400 and html.json()["code"] == "unsupported_content_type"


def e040(settings, purposes) -> list[str]:
    settings.UPLOAD_PURPOSES = purposes
    return [m.msg for m in run_checks() if m.id == "uploads.E050"]


def test_the_default_purposes_pass_the_check(settings):
    assert e040(settings, settings.UPLOAD_PURPOSES) == []


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"folder": "../x/", "content_types": {"a/b": [".b"]}, "max_bytes": 1}, "folder must be"),
        ({"folder": "x/", "content_types": {}, "max_bytes": 1}, "content_types must map"),
        ({"folder": "x/", "content_types": {"Text/HTML": [".html"]}, "max_bytes": 1}, "lower-case type"),
        ({"folder": "x/", "content_types": {"text/plain": "txt"}, "max_bytes": 1}, "list of extensions"),
        ({"folder": "x/", "content_types": {"text/plain": [".txt"]}, "max_bytes": 0}, "max_bytes must be"),
        ({"folder": "x/", "content_types": {"text/plain": [".txt"]}, "max_bytes": 6 * 1024**3}, "5 GB"),
        (
            {
                "folder": "x/",
                "content_types": {"text/plain": [".txt"]},
                "max_bytes": 9,
                "success_action_status": 302,
            },
            "200, 201 or 204",
        ),
        (
            {"folder": "x/", "content_types": {"text/plain": [".txt"]}, "max_bytes": 9, "acl": "public"},
            "unknown key",
        ),
        ("attachments/", "must be an object"),
    ],
)
def test_a_bad_entry_is_named_with_a_hint(settings, entry, says):
    messages = e040(settings, {"avatar": {"folder": "avatars/"}, "files": entry})
    assert any(says in message and "'files'" in message for message in messages), messages
    assert upload_purpose_get("files") is None  # refused, never half-used


def test_the_avatar_entry_takes_only_folder_and_status(settings):
    messages = e040(settings, {"avatar": {"folder": "avatars/", "max_bytes": 10, "content_types": {}}})
    assert any("'max_bytes' is the avatar feature's own" in m for m in messages)
    assert any("'content_types' is the avatar feature's own" in m for m in messages)


@given(
    name=st.text(max_size=40),
    entry=st.recursive(st.none() | st.integers() | st.text(), st.lists, max_leaves=5),
)
def test_any_entry_is_judged_without_an_exception(name, entry):
    """What an operator (or a typo) can put in the JSON: a list of problems, never a crash."""
    assert isinstance(purpose_setting_problems(name, entry), list)


@given(
    entry=st.dictionaries(
        st.sampled_from(["folder", "content_types", "max_bytes", "success_action_status", "x"]),
        st.none()
        | st.integers()
        | st.text()
        | st.lists(st.text())
        | st.dictionaries(st.text(), st.lists(st.text())),
    )
)
def test_any_dict_entry_is_judged_without_an_exception(entry):
    assert isinstance(purpose_setting_problems("files", entry), list)
