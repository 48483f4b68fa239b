"""Read isolation: a user's credentials read nothing, not even through a symbolic link they plant.

PutSymlink is ``oss:PutObject`` on the link and OSS does not check the target, so a token may plant
``user/<id>/x`` pointing at any key of the bucket. Alibaba documents that a read through a link checks
"the ACLs of the link and of the target", not whether RAM evaluates the session policy against the
target too. The sandbox runs both readings (``SandboxConfig.symlink_reads``): under "link-only" a
token that may read its own folder reads the whole bucket through such a link
(tests/sandbox/test_oss_symlink.py shows it). The product's credentials are write-only
(aliyun/policy.py), so under either reading they read nothing: checked here with the tokens the API
hands out, for generated victim keys anywhere in the bucket.
"""

from __future__ import annotations

from collections.abc import Iterator

import oss2
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.sandbox.conftest import oss_error_code

pytestmark = pytest.mark.django_db

SECRET = b"the victim's bytes"
# Where a victim's object may lie: another user's folder (ids around the attacker's), the confirmed
# avatars, the bucket's root; and what follows, in a small alphabet OSS accepts in any position.
FOLDERS = st.sampled_from(["user/{other}/", "user/{other}0/", "avatars/{other}/", "", "user/{me}/"])
NAMES = st.text(alphabet="abcxyz0129-_. 头像", min_size=1, max_size=24).filter(
    lambda name: name.strip(". ") and not name.startswith(" ")
)


@pytest.fixture(params=["link-and-target", "link-only"])
def symlink_reading(request, sandbox) -> Iterator[str]:
    """The sandbox's reading of a read through a link, for this test only."""
    before = sandbox.config.symlink_reads
    sandbox.config.symlink_reads = request.param
    yield request.param
    sandbox.config.symlink_reads = before


@pytest.fixture
def attacker(jwt_client, user, settings, sandbox) -> oss2.Bucket:
    """The bucket through the credentials ``POST /api/uploads/sts-token/`` hands ``user``."""
    body = jwt_client.post("/api/uploads/sts-token/").json()
    auth = oss2.StsAuth(body["accessKeyId"], body["accessKeySecret"], body["securityToken"])
    return oss2.Bucket(auth, body["endpoint"], body["bucket"])


def _refused(read) -> None:
    with pytest.raises(oss2.exceptions.OssError) as raised:
        answer = read()
        body = answer.read() if hasattr(answer, "read") else b""
        pytest.fail(f"read through the user's credentials answered {answer.status}: {body[:40]!r}")
    assert oss_error_code(raised.value) == (403, "AccessDenied")
    assert SECRET not in str(raised.value).encode()


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(folder=FOLDERS, victim_name=NAMES, link_name=NAMES)
def test_credentials_read_nothing_through_a_link_they_plant(
    symlink_reading, attacker, user, server_oss, folder, victim_name, link_name
) -> None:
    victim = folder.format(other=user.pk + 1, me=user.pk) + victim_name
    link = f"user/{user.pk}/links/{link_name}"
    server_oss.put_object(victim, SECRET)

    attacker.put_symlink(victim, link)  # allowed: oss:PutObject on the link, the target unchecked

    assert server_oss.get_symlink(link).target_key == victim
    _refused(lambda: attacker.get_object(link))
    _refused(lambda: attacker.head_object(link))
    _refused(lambda: attacker.get_symlink(link))
    _refused(lambda: attacker.get_object(victim))
    _refused(lambda: attacker.copy_object(server_oss.bucket_name, link, f"user/{user.pk}/copied"))
    _refused(lambda: attacker.copy_object(server_oss.bucket_name, victim, f"user/{user.pk}/copied"))
    with pytest.raises(oss2.exceptions.NoSuchKey):
        server_oss.head_object(f"user/{user.pk}/copied")
