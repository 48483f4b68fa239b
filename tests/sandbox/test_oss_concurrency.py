"""Concurrent writes to one key are atomic in the sandbox, as OSS's are.

OSS answers a reader racing an overwrite with the old object or the new one, whole: never a 500, never a
404 for a key that exists throughout, never one write's bytes with another's Content-Type or ETag. The
avatar race test (tests/avatars/test_avatar_race.py) leans on that; here one key is hammered directly
through oss2 with PUTs and COPYs while GET, HEAD and ListObjectsV2 read it.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import oss2
import pytest

from sandbox.server import Sandbox
from sandbox.storage import ObjectMeta, Storage

KEY = "user/7/race/target"
SOURCE = "user/7/race/source"
# Each write is told apart by its Content-Type, which names its bytes; sizes differ too.
PAYLOADS = {
    "image/png": b"\x89PNG\r\n\x1a\n" + b"p" * 40_000,
    "text/html": b"<html>" + b"h" * 3_000,
    "application/json": b'{"j": "' + b"j" * 120_000 + b'"}',
    "application/octet-stream": b"copied" * 10_000,  # only ever written by COPY from SOURCE
}
PUT_TYPES = ["image/png", "text/html", "application/json"]
COPIED_TYPE = "application/octet-stream"
ETAGS = {
    content_type: hashlib.md5(data, usedforsecurity=False).hexdigest().upper()
    for content_type, data in PAYLOADS.items()
}
DURATION = 4.0  # seconds of racing; each round trip is a few ms


@pytest.fixture
def server_bucket(private_sandbox: Sandbox) -> oss2.Bucket:
    """The sandbox's own RAM key (may list), on an empty data directory."""
    config = private_sandbox.config
    auth = oss2.AuthV4(config.access_key_id, config.access_key_secret)
    return oss2.Bucket(auth, private_sandbox.oss_endpoint, config.bucket, region=config.region)


def _put(bucket: oss2.Bucket, key: str, content_type: str) -> None:
    bucket.put_object(
        key, PAYLOADS[content_type], headers={"Content-Type": content_type, "x-oss-meta-type": content_type}
    )


def _check(
    content_type: str, etag: str, size: int, meta: str | None, body: bytes | None = None
) -> str | None:
    """What is wrong with one reading, or None: every field must come from the same write."""
    if content_type not in PAYLOADS:
        return f"unknown Content-Type {content_type!r}"
    if etag.strip('"') != ETAGS[content_type] or size != len(PAYLOADS[content_type]):
        return f"{content_type} with ETag {etag} and size {size}"
    if meta is not None and meta != content_type:
        return f"{content_type} with x-oss-meta-type {meta!r}"
    if body is not None and body != PAYLOADS[content_type]:
        return f"{content_type} with {len(body)} bytes starting {body[:8]!r}"
    return None


def test_racing_writes_to_one_key_are_never_torn_nor_500(server_bucket: oss2.Bucket) -> None:
    _put(server_bucket, SOURCE, COPIED_TYPE)
    _put(server_bucket, KEY, PUT_TYPES[0])
    stop = threading.Event()
    done: Counter[str] = Counter()
    failures: list[str] = []

    def loop(name: str, step: Callable[[int], str | None]) -> None:
        round_ = 0
        while not stop.is_set():
            try:
                problem = step(round_)
            except oss2.exceptions.OssError as exc:  # any answer but 2xx: none is expected here
                problem = f"{exc.status} {exc.code}: {exc.message}"
            if problem:
                failures.append(f"{name}: {problem}")
            done[name] += 1
            round_ += 1

    def put(round_: int) -> None:
        _put(server_bucket, KEY, PUT_TYPES[round_ % len(PUT_TYPES)])

    def copy(_: int) -> None:
        server_bucket.copy_object(server_bucket.bucket_name, SOURCE, KEY)

    def get(_: int) -> str | None:
        result = server_bucket.get_object(KEY)
        body = result.read()
        return _check(
            result.content_type, result.etag, len(body), result.headers.get("x-oss-meta-type"), body
        )

    def head(_: int) -> str | None:
        result = server_bucket.head_object(KEY)
        return _check(
            result.content_type, result.etag, result.content_length, result.headers.get("x-oss-meta-type")
        )

    def listing(_: int) -> str | None:
        listed = {item.key: item for item in server_bucket.list_objects_v2(prefix="user/7/race/").object_list}
        if set(listed) != {KEY, SOURCE}:
            return f"listed {sorted(listed)}"
        item = listed[KEY]
        matching = [t for t in PAYLOADS if _check(t, item.etag, item.size, None) is None]
        return None if matching else f"listed ETag {item.etag} with size {item.size}"

    steps = {
        "put-a": put,
        "put-b": put,
        "copy": copy,
        "get": get,
        "head": head,
        "list-a": listing,
        "list-b": listing,
    }
    threads = [threading.Thread(target=loop, args=(name, step)) for name, step in steps.items()]
    for thread in threads:
        thread.start()
    try:
        time.sleep(DURATION)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    assert not failures, f"{len(failures)} bad answers in {dict(done)}, e.g. {failures[:5]}"
    assert all(done[name] >= 20 for name in steps), done  # every kind of request did race the others


def test_a_listing_skips_a_writers_temporary_metadata(tmp_path) -> None:
    """A ``.tmp-*.json`` beside the published metadata is a write in flight (or one that died): half
    written, it is no object, and listing must not choke on it."""
    storage = Storage(tmp_path)
    storage.commit("b", "k", storage.stage(io.BytesIO(b"whole")), content_type="text/plain", user_meta={})
    (next(storage.objects.glob("*/*.json")).parent / ".tmp-in-flight.json").write_text("")

    assert [meta.key for meta in storage.iter_objects("b")] == ["k"]


def test_a_reader_outpaced_by_many_overwrites_still_gets_one_whole_version(tmp_path, monkeypatch) -> None:
    """Each time the reader has read the metadata, a writer publishes a newer version (deleting the
    data file the reader was about to open): the reader ends with a whole version, not a 404."""
    storage = Storage(tmp_path)

    def write(version: int) -> None:
        staged = storage.stage(io.BytesIO(b"version %d" % version))
        storage.commit("b", "k", staged, content_type=f"text/v{version}", user_meta={})

    write(0)
    read_meta, overwrites, writing = Storage._read_meta, [1, 2, 3, 4, 5], []

    def read_then_overwrite(self: Storage, meta_path: Path) -> ObjectMeta | None:
        meta = read_meta(self, meta_path)
        if overwrites and not writing:  # commit reads the metadata too: not a reader
            writing.append(True)
            write(overwrites.pop(0))
            writing.clear()
        return meta

    monkeypatch.setattr(Storage, "_read_meta", read_then_overwrite)
    opened = storage.open("b", "k")

    assert opened is not None
    meta, handle = opened
    with handle:
        assert (meta.content_type, handle.read()) == ("text/v5", b"version 5")
