"""Cross-user matrix: a token scoped to ``user/7/`` tries everything else, with the real clients.

Every case must be refused (403 AccessDenied, or 400 InvalidObjectName for a name OSS rejects
outright), and afterwards no object may exist outside ``user/7/``. Authorization runs before
existence checks, so reads of absent keys prove the same as reads of present ones: a 404 here
would leak. OSS treats keys literally: ``user/7/../8/x`` is a key inside ``user/7/`` (checked
separately below), while ``%2F`` and backslashes never become separators.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import alibabacloud_oss_v2 as oss
import oss2
import pytest
import requests

from sandbox.config import SandboxConfig
from sandbox.server import Sandbox
from sandbox.tokens import IssuedCredentials
from tests.sandbox.conftest import _issuer, oss2_bucket, oss_error_code, stored_keys, v2_client
from tests.sandbox.test_oss_post_object import signed_form

OTHER_BUCKET = "someone-elses-bucket"
FAKE_UPLOAD = "0" * 32
DENIED = (403, "AccessDenied")
BAD_NAME = (400, "InvalidObjectName")


@dataclass
class Ctx:
    """Clients for user 7 against one private sandbox."""

    endpoint: str
    bucket: str
    creds: IssuedCredentials
    v1: oss2.Bucket
    v4: oss2.Bucket
    other: oss2.Bucket
    other_v4: oss2.Bucket
    v2: oss.Client
    own_upload: str


@pytest.fixture(scope="module")
def matrix_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    config = SandboxConfig.from_settings(data_dir=tmp_path_factory.mktemp("matrix"))
    with Sandbox(config) as running:
        yield running


@pytest.fixture(scope="module")
def ctx(matrix_sandbox: Sandbox) -> Ctx:
    config = matrix_sandbox.config
    creds = _issuer(config)(7)
    endpoint = matrix_sandbox.oss_endpoint
    v1 = oss2_bucket(endpoint, config.bucket, creds)
    v1.put_object("user/7/x", b"mine")
    return Ctx(
        endpoint=endpoint,
        bucket=config.bucket,
        creds=creds,
        v1=v1,
        v4=oss2_bucket(endpoint, config.bucket, creds, version="v4"),
        other=oss2_bucket(endpoint, OTHER_BUCKET, creds),
        other_v4=oss2_bucket(endpoint, OTHER_BUCKET, creds, version="v4"),
        v2=v2_client(endpoint, creds),
        own_upload=v1.init_multipart_upload("user/7/mp").upload_id,
    )


def _http(answer: requests.Response) -> tuple[int, str]:
    code = answer.text.split("<Code>", 1)[-1].split("</Code>", 1)[0] if "<Code>" in answer.text else ""
    return answer.status_code, code


def _post_object(c: Ctx, key: str, bucket: str | None = None) -> tuple[int, str]:
    fields = signed_form(c.creds, key, conditions=[["starts-with", "$key", "user/"]])
    answer = requests.post(
        f"{c.endpoint}/{bucket or c.bucket}",
        data=fields,
        files={"file": ("f.jpg", b"x", "image/jpeg")},
        timeout=5,
    )
    return _http(answer)


def _complete(bucket: oss2.Bucket, key: str, upload_id: str) -> Any:
    return bucket.complete_multipart_upload(key, upload_id, [oss2.models.PartInfo(1, "0" * 32)])


def put(key: str, client: str = "v1") -> Callable[[Ctx], Any]:
    return lambda c: getattr(c, client).put_object(key, b"intrusion")


# (id, action, expected (status, code))
CASES: list[tuple[str, Callable[[Ctx], Any], tuple[int, str]]] = [
    # -- another user's prefix and near-miss prefixes, PutObject with oss2 V1
    ("put-user8", put("user/8/x"), DENIED),
    ("put-user70", put("user/70/x"), DENIED),
    ("put-user7-no-slash", put("user/7"), DENIED),
    ("put-user7x", put("user/7x"), DENIED),
    ("put-user7-folder-less", put("user7/x"), DENIED),
    ("put-user-root", put("user/"), DENIED),
    ("put-double-slash", put("user//7/x"), DENIED),
    ("put-user8-folder", put("user/8/"), DENIED),
    ("put-dot-prefix", put("./user/7/x"), DENIED),
    ("put-dotdot-from-user8", put("user/8/../7/x"), DENIED),
    ("put-uppercase", put("USER/7/x"), DENIED),
    ("put-capitalised", put("User/7/x"), DENIED),
    ("put-leading-space", put(" user/7/x"), DENIED),
    ("put-space-before-slash", put("user/7 /x"), DENIED),
    ("put-leading-slash", put("/user/7/x"), BAD_NAME),
    # -- encodings that must never turn into separators
    ("put-encoded-slashes", put("user%2F8%2Fx"), DENIED),
    ("put-encoded-slashes-lower", put("user%2f8%2fx"), DENIED),
    ("put-encoded-dotdot", put("user/7%2F..%2F8%2Fx"), DENIED),
    ("put-encoded-digit", put("user/%37/x"), DENIED),
    ("put-backslashes", put("user\\8\\x"), DENIED),
    ("put-backslash-user7", put("user\\7\\x"), DENIED),
    ("put-backslash-dotdot", put("user/7\\..\\..\\user/8/x"), DENIED),
    # -- the same with oss2 V4 and alibabacloud-oss-v2
    ("v4-put-user8", put("user/8/x", "v4"), DENIED),
    ("v4-put-user70", put("user/70/x", "v4"), DENIED),
    ("v4-put-user7x", put("user/7x", "v4"), DENIED),
    ("v4-put-encoded-slashes", put("user%2F8%2Fx", "v4"), DENIED),
    (
        "v2-put-user8",
        lambda c: c.v2.put_object(oss.PutObjectRequest(bucket=c.bucket, key="user/8/x", body=b"x")),
        DENIED,
    ),
    (
        "v2-delete-own",
        lambda c: c.v2.delete_object(oss.DeleteObjectRequest(bucket=c.bucket, key="user/7/x")),
        DENIED,
    ),
    # -- reads and deletes
    ("get-user8", lambda c: c.v1.get_object("user/8/x"), DENIED),
    ("head-user8", lambda c: c.v4.head_object("user/8/x"), DENIED),
    ("delete-own", lambda c: c.v1.delete_object("user/7/x"), DENIED),
    ("delete-user8", lambda c: c.v4.delete_object("user/8/x"), DENIED),
    (
        "presigned-put-user8",
        lambda c: _http(requests.put(c.v1.sign_url("PUT", "user/8/x", 60), b"x")),
        DENIED,
    ),
    ("presigned-get-user8", lambda c: _http(requests.get(c.v4.sign_url("GET", "user/8/x", 60))), DENIED),
    # -- ACLs
    ("put-object-acl-own", lambda c: c.v1.put_object_acl("user/7/x", oss2.OBJECT_ACL_PUBLIC_READ), DENIED),
    ("get-object-acl-own", lambda c: c.v4.get_object_acl("user/7/x"), DENIED),
    # PutSymlink is oss:PutObject on the link (tests/sandbox/test_oss_symlink.py): refused only outside
    ("put-symlink-into-user8", lambda c: c.v1.put_symlink("user/7/x", "user/8/link"), DENIED),
    # -- multipart outside the prefix
    ("init-multipart-user8", lambda c: c.v1.init_multipart_upload("user/8/x"), DENIED),
    ("upload-part-user8", lambda c: c.v1.upload_part("user/8/x", FAKE_UPLOAD, 1, b"x"), DENIED),
    ("upload-part-user8-own-id", lambda c: c.v4.upload_part("user/8/x", c.own_upload, 1, b"x"), DENIED),
    ("complete-user8", lambda c: _complete(c.v1, "user/8/x", c.own_upload), DENIED),
    ("list-parts-user8", lambda c: c.v1.list_parts("user/8/x", FAKE_UPLOAD), DENIED),
    ("abort-user8", lambda c: c.v4.abort_multipart_upload("user/8/x", c.own_upload), DENIED),
    # -- copy into and out of the prefix
    ("copy-user8-into-own", lambda c: c.v1.copy_object(c.bucket, "user/8/x", "user/7/copy"), DENIED),
    ("copy-own-into-user8", lambda c: c.v1.copy_object(c.bucket, "user/7/x", "user/8/copy"), DENIED),
    # -- PostObject with a policy that allows it but a token that does not
    ("post-object-user8", lambda c: _post_object(c, "user/8/x"), DENIED),
    ("post-object-other-bucket", lambda c: _post_object(c, "user/7/x", OTHER_BUCKET), DENIED),
    # -- bucket-level and service-level calls
    ("list-objects", lambda c: c.v1.list_objects(), DENIED),
    ("list-objects-own-prefix", lambda c: c.v4.list_objects(prefix="user/7/"), DENIED),
    ("get-bucket-acl", lambda c: c.v1.get_bucket_acl(), DENIED),
    ("put-bucket-acl", lambda c: c.v1.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ_WRITE), DENIED),
    ("delete-bucket", lambda c: c.v4.delete_bucket(), DENIED),
    ("create-bucket", lambda c: c.v1.create_bucket(), DENIED),
    ("get-bucket-info", lambda c: c.v1.get_bucket_info(), DENIED),
    ("put-bucket-policy", lambda c: c.v1.put_bucket_policy('{"Version":"1","Statement":[]}'), DENIED),
    (
        "list-buckets",
        lambda c: oss2.Service(
            oss2.StsAuth(c.creds.access_key_id, c.creds.access_key_secret, c.creds.security_token), c.endpoint
        ).list_buckets(),
        DENIED,
    ),
    # -- another bucket
    ("other-bucket-put", lambda c: c.other.put_object("user/7/x", b"x"), DENIED),
    ("other-bucket-get", lambda c: c.other.get_object("user/7/x"), DENIED),
    ("other-bucket-v4-put", lambda c: c.other_v4.put_object("user/7/x", b"x"), DENIED),
]


@pytest.mark.parametrize(("action", "expected"), [pytest.param(a, e, id=i) for i, a, e in CASES])
def test_user7_token_is_refused(ctx: Ctx, matrix_sandbox: Sandbox, action, expected) -> None:
    try:
        outcome = action(ctx)
    except (oss2.exceptions.OssError, oss.exceptions.OperationError) as exc:
        outcome = oss_error_code(exc)

    assert outcome == expected
    assert all(key.startswith("user/7/") for key in stored_keys(matrix_sandbox.config))


def test_matrix_is_large_enough() -> None:
    assert len(CASES) >= 40


def test_no_write_outside_the_prefix(ctx: Ctx, matrix_sandbox: Sandbox) -> None:
    """Runs after the matrix (file order): the only objects are user 7's own."""
    for case_id, action, _ in CASES:
        try:
            action(ctx)
        except (oss2.exceptions.OssError, oss.exceptions.OperationError):
            pass
        assert all(key.startswith("user/7/") for key in stored_keys(matrix_sandbox.config)), case_id
    assert stored_keys(matrix_sandbox.config) == ["user/7/x"]
    assert ctx.v1.get_object("user/7/x").read() == b"mine"


def test_dot_segments_are_literal_key_characters(ctx: Ctx, matrix_sandbox: Sandbox) -> None:
    """oss2 sends ``/`` as %2F, so ``..`` reaches OSS as part of the name: it stays under user/7/."""
    ctx.v1.put_object("user/7/../8/x", b"literal")

    assert ctx.v1.get_object("user/7/../8/x").read() == b"literal"
    assert "user/7/../8/x" in stored_keys(matrix_sandbox.config)
    assert not any(key.startswith("user/8/") for key in stored_keys(matrix_sandbox.config))
    with pytest.raises(oss2.exceptions.AccessDenied):
        ctx.v1.get_object("user/8/x")
