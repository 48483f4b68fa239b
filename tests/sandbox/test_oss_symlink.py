"""Symbolic links (PutSymlink) in the sandbox OSS, as Alibaba documents them, driven by oss2.

PutSymlink needs only ``oss:PutObject`` on the link and does not check the target; GetSymlink needs
``oss:GetObject``. HEAD and GET of a link answer with the target's size, ETag and bytes and
``x-oss-object-type: Symlink``; CopyObject copies the link, not the target.
"""

from __future__ import annotations

import oss2
import pytest

from tests.sandbox.conftest import oss_error_code


def test_a_token_may_link_from_its_own_folder_to_any_key(make_oss2, issue) -> None:
    user7, user8 = make_oss2(issue(7)), make_oss2(issue(8))
    user8.put_object("user/8/private.png", b"user 8's bytes")

    user7.put_symlink("user/8/private.png", "user/7/link.png")

    assert user7.get_symlink("user/7/link.png").target_key == "user/8/private.png"


def test_a_token_may_not_place_a_link_outside_its_folder(make_oss2, user7) -> None:
    with pytest.raises(oss2.exceptions.AccessDenied):
        make_oss2(user7).put_symlink("user/7/mine.png", "user/8/link.png")


def test_reading_through_a_link_also_needs_the_target(make_oss2, issue) -> None:
    user7, user8 = make_oss2(issue(7)), make_oss2(issue(8))
    user8.put_object("user/8/private.png", b"user 8's bytes")
    user7.put_symlink("user/8/private.png", "user/7/link.png")

    for read in (user7.get_object, user7.head_object):
        with pytest.raises(oss2.exceptions.AccessDenied):
            read("user/7/link.png")


def test_under_the_link_only_reading_a_token_reads_any_key_through_its_own_link(
    sandbox, make_oss2, issue
) -> None:
    """``SandboxConfig.symlink_reads = "link-only"``: the reading under which a token allowed to read its
    own folder reads the whole bucket. The product's write-only credentials are safe under it too
    (tests/uploads/test_read_isolation.py)."""
    user7, user8 = make_oss2(issue(7)), make_oss2(issue(8))  # each may GetObject in its own folder
    user8.put_object("user/8/private.png", b"user 8's bytes")
    user7.put_symlink("user/8/private.png", "user/7/link.png")

    sandbox.config.symlink_reads = "link-only"
    try:
        assert user7.get_object("user/7/link.png").read() == b"user 8's bytes"
    finally:
        sandbox.config.symlink_reads = "link-and-target"


def test_head_and_get_of_a_link_answer_with_the_target(make_oss2, user7, server_oss) -> None:
    user = make_oss2(user7)
    stored = user.put_object("user/7/target.png", b"the target's bytes")
    user.put_symlink("user/7/target.png", "user/7/link.png")

    head = server_oss.head_object("user/7/link.png")
    assert (head.content_length, head.etag, head.object_type) == (18, stored.etag, "Symlink")
    assert server_oss.get_object("user/7/link.png").read() == b"the target's bytes"
    assert user.get_object("user/7/link.png").read() == b"the target's bytes"


def test_copy_of_a_link_copies_the_link(bucket_name, make_oss2, user7, server_oss) -> None:
    user = make_oss2(user7)
    user.put_object("user/7/target.png", b"first")
    user.put_symlink("user/7/target.png", "user/7/link.png")

    server_oss.copy_object(bucket_name, "user/7/link.png", "copied/link.png")
    user.put_object("user/7/target.png", b"second")

    assert server_oss.get_symlink("copied/link.png").target_key == "user/7/target.png"
    assert server_oss.get_object("copied/link.png").read() == b"second"


def test_a_link_to_nothing_is_404(make_oss2, user7, server_oss) -> None:
    make_oss2(user7).put_symlink("user/7/absent.png", "user/7/dangling.png")

    with pytest.raises(oss2.exceptions.OssError) as raised:
        server_oss.get_object("user/7/dangling.png")
    assert oss_error_code(raised.value) == (404, "SymlinkTargetNotExist")
