"""ListObjects and ListObjectsV2 in the sandbox, through oss2: what the server's key uses to count a user's folder."""

from __future__ import annotations

import oss2
import pytest

from sandbox.server import Sandbox
from tests.sandbox.conftest import IssueFn, _issuer, oss2_bucket, oss_error_code

KEYS = [
    "avatars/7/a.png",
    "user/7/a.png",
    "user/7/avatars/b.png",
    "user/7/avatars/c d.png",
    "user/7/z.txt",
    "user/70/x.png",
    "user/8/y.png",
]


@pytest.fixture
def filled(private_sandbox: Sandbox) -> oss2.Bucket:
    """A fresh bucket holding KEYS (key length as content), seen with the server's own RAM key."""
    config = private_sandbox.config
    auth = oss2.AuthV4(config.access_key_id, config.access_key_secret)
    bucket = oss2.Bucket(auth, private_sandbox.oss_endpoint, config.bucket, region=config.region)
    for key in KEYS:
        bucket.put_object(key, key.encode())
    return bucket


@pytest.mark.parametrize("iterator", [oss2.ObjectIterator, oss2.ObjectIteratorV2])
def test_server_key_lists_one_users_folder_in_pages(filled, iterator) -> None:
    listed = list(iterator(filled, prefix="user/7/", max_keys=2))

    assert [item.key for item in listed] == [k for k in KEYS if k.startswith("user/7/")]
    assert [item.size for item in listed] == [len(item.key) for item in listed]
    assert all(item.etag and item.last_modified for item in listed)


@pytest.mark.parametrize("iterator", [oss2.ObjectIterator, oss2.ObjectIteratorV2])
def test_delimiter_folds_folders(filled, iterator) -> None:
    listed = list(iterator(filled, prefix="user/", delimiter="/", max_keys=1))

    assert [item.key for item in listed] == ["user/7/", "user/70/", "user/8/"]
    assert all(item.is_prefix() for item in listed)


def test_v2_start_after_and_url_encoding(filled) -> None:
    result = filled.list_objects_v2(prefix="user/7/avatars/", start_after="user/7/avatars/b.png")

    assert [item.key for item in result.object_list] == ["user/7/avatars/c d.png"]
    assert not result.is_truncated


def test_empty_prefix_lists_nothing(filled) -> None:
    assert filled.list_objects_v2(prefix="user/9/").object_list == []


def test_bad_continuation_token_is_invalid_argument(filled) -> None:
    with pytest.raises(oss2.exceptions.OssError) as refused:
        filled.list_objects_v2(prefix="user/", continuation_token="%%%")
    assert oss_error_code(refused.value) == (400, "InvalidArgument")


def test_a_users_token_cannot_list(private_sandbox: Sandbox, filled) -> None:
    issue: IssueFn = _issuer(private_sandbox.config)
    user_bucket = oss2_bucket(private_sandbox.oss_endpoint, private_sandbox.config.bucket, issue(7))

    with pytest.raises(oss2.exceptions.OssError) as refused:
        user_bucket.list_objects_v2(prefix="user/7/")
    assert oss_error_code(refused.value) == (403, "AccessDenied")
