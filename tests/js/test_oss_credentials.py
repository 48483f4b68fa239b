"""The browser helper static/js/oss-credentials.js: its output shape (node's test runner) and, with the
real ali-oss against the sandbox, that it keeps a client working across a refresh where the API's
answer returned unchanged breaks it."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node is needed for the browser bundle (make install)")


def test_helper_output_shape_in_node():
    run = subprocess.run(
        [NODE, "--test", "tests/js/"], cwd=BASE_DIR, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# fail 0" in run.stdout and "# pass 5" in run.stdout


def _ali_oss(mode: str, answer: dict) -> dict:
    run = subprocess.run(
        [NODE, "tests/js/ali_oss_refresh.js", mode],
        cwd=BASE_DIR,
        input=json.dumps(answer),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.django_db
def test_ali_oss_keeps_uploading_after_a_refresh_with_the_helper(jwt_client, user, sandbox):
    answer = jwt_client.post("/api/uploads/sts-token/").json()

    with_helper = _ali_oss("helper", answer)
    assert with_helper == {"results": [200, 200], "endpointType": "object"}
    stored = {meta.key for meta in sandbox_objects(sandbox)}
    assert {f"user/{user.pk}/helper-first.txt", f"user/{user.pk}/helper-second.txt"} <= stored

    # The pitfall: the answer returned unchanged merges its endpoint (a string), region and bucket into
    # the client's options at the first refresh, and the uploads after it go to a broken URL.
    unchanged = _ali_oss("raw", answer)
    assert unchanged["results"][-1] != 200
    assert "RequestError" in unchanged["results"][-1]
    assert unchanged["endpointType"] == "string"


def sandbox_objects(sandbox):
    from sandbox.storage import Storage

    return Storage(sandbox.config.data_dir).iter_objects(sandbox.config.bucket)
