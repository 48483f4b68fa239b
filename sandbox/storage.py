"""Objects and multipart uploads of the sandbox OSS, kept as files under ``data_dir``.

Why files: the sandbox must survive a restart (``make run`` restarts it) and must not hold a
large upload in memory. Safety rules:

* a key never becomes a path: every object lives under ``sha256(bucket, key)``;
* every write goes to a temporary file first and is published with ``os.replace``; the JSON
  metadata is the commit point and names a uniquely named data file, so a reader sees either the
  old object or the new one, never a mix; listings read published metadata only (``<sha256>.json``),
  never a writer's temporary file;
* multipart upload ids are generated here and validated against a strict pattern before they
  touch a path.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import crcmod

CHUNK = 1024 * 1024
MAX_OBJECT_SIZE = 5 * 1024**3  # PutObject / PostObject / UploadPart limit
MIN_PART_SIZE = 100 * 1024  # OSS: every part but the last must be at least 100 KB
MAX_PART_NUMBER = 10000
_UPLOAD_ID = re.compile(r"^[0-9A-F]{32}$")
_META_NAME = re.compile(r"[0-9a-f]{64}\.json")  # an object's published metadata: <sha256>.json

# CRC-64/ECMA-182 exactly as oss2 (utils.Crc64) and alibabacloud-oss-v2 compute it.
_CRC64_POLY = 0x142F0E1EBA9EA3693
_CRC64_XOROUT = 0xFFFFFFFFFFFFFFFF


def new_crc64() -> crcmod.Crc:
    return crcmod.Crc(_CRC64_POLY, initCrc=0, rev=True, xorOut=_CRC64_XOROUT)


def crc64(data: bytes) -> int:
    """CRC-64/ECMA-182 of ``data``, the value of ``x-oss-hash-crc64ecma``."""
    crc = new_crc64()
    crc.update(data)
    return crc.crcValue


class StorageError(Exception):
    """A storage-level refusal the HTTP layer maps to an OSS error code."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


ABANDONED_WRITE_SECONDS = 3600.0


@dataclass(frozen=True)
class ObjectMeta:
    """What is stored beside each object's bytes."""

    bucket: str
    key: str
    size: int
    etag: str  # quoted, as sent in the ETag header
    crc64: str  # decimal, as sent in x-oss-hash-crc64ecma
    content_type: str
    last_modified: float  # epoch seconds
    user_meta: dict[str, str] = field(default_factory=dict)
    object_type: str = "Normal"
    data_file: str = ""
    # Standard HTTP headers given at upload and returned by HEAD/GET (Content-Disposition, Cache-Control, ...).
    headers: dict[str, str] = field(default_factory=dict)
    acl: str = "default"  # x-oss-object-acl given at upload
    tags: dict[str, str] = field(default_factory=dict)  # x-oss-tagging given at upload
    symlink_target: str = ""  # the key a Symlink object points to (PutSymlink), else ""


@dataclass(frozen=True)
class PartMeta:
    number: int
    size: int
    etag: str
    crc64: str
    last_modified: float


@dataclass(frozen=True)
class UploadMeta:
    upload_id: str
    bucket: str
    key: str
    content_type: str
    user_meta: dict[str, str]
    initiated: float
    headers: dict[str, str] = field(default_factory=dict)
    acl: str = "default"
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Staged:
    """Bytes received into a temporary file, with the digests OSS reports; not yet visible."""

    path: Path
    size: int
    md5: bytes
    crc64: int

    @property
    def etag(self) -> str:
        return f'"{self.md5.hex().upper()}"'

    @property
    def content_md5(self) -> str:
        return base64.b64encode(self.md5).decode()

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def _atomic_write_json(path: Path, payload: Mapping[str, object]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Storage:
    """Files under ``<data_dir>/oss``: ``objects/<h[:2]>/<h>.json`` (+ data) and ``uploads/<id>/``."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "oss"
        self.objects = self.root / "objects"
        self.uploads = self.root / "uploads"
        self.tmp = self.root / "tmp"
        for directory in (self.objects, self.uploads, self.tmp):
            directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # serialises publish/delete of one process' writers
        self._claimed: dict[str, Path] = {}  # upload id -> its directory while a complete holds it
        self._sweep_abandoned_writes()

    def _sweep_abandoned_writes(self, older_than: float = ABANDONED_WRITE_SECONDS) -> None:
        """Temporary files left by a sandbox that died mid-write; never published, so nobody reads them.

        Only old ones: a younger file may be a write in flight in another process on the same directory.
        """
        cutoff = time.time() - older_than
        for path in [*self.tmp.iterdir(), *self.root.rglob(".tmp-*")]:
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                pass  # gone already, or not ours to remove

    # ------------------------------------------------------------------ receiving bytes

    def stage(self, stream: BinaryIO, *, limit: int = MAX_OBJECT_SIZE) -> Staged:
        """Copy ``stream`` into a temporary file, hashing as it goes; EntityTooLarge past ``limit``."""
        return self._write_hashed([stream], prefix="stage-", limit=limit)

    def stage_all(self, streams: list[BinaryIO]) -> Staged:
        """The streams one after the other in a temporary file (the caller closes them): AppendObject."""
        return self._write_hashed(streams, prefix="append-", limit=MAX_OBJECT_SIZE)

    def _write_hashed(self, streams: list[BinaryIO], *, prefix: str, limit: int | None) -> Staged:
        """Concatenate ``streams`` into a temporary file with its MD5 and CRC-64 (the caller closes them)."""
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix=prefix)
        md5, crc, size = hashlib.md5(usedforsecurity=False), new_crc64(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                for stream in streams:
                    while chunk := stream.read(CHUNK):
                        size += len(chunk)
                        if limit is not None and size > limit:
                            raise StorageError(
                                "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size."
                            )
                        md5.update(chunk)
                        crc.update(chunk)
                        out.write(chunk)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Staged(Path(name), size, md5.digest(), crc.crcValue)

    # ------------------------------------------------------------------ objects

    def _object_id(self, bucket: str, key: str) -> str:
        return hashlib.sha256(f"{bucket}\0{key}".encode()).hexdigest()

    def _meta_path(self, bucket: str, key: str) -> Path:
        digest = self._object_id(bucket, key)
        return self.objects / digest[:2] / f"{digest}.json"

    def commit(
        self,
        bucket: str,
        key: str,
        staged: Staged,
        *,
        content_type: str,
        user_meta: Mapping[str, str],
        etag: str | None = None,
        object_type: str = "Normal",
        if_absent: bool = False,
        headers: Mapping[str, str] | None = None,
        acl: str = "default",
        tags: Mapping[str, str] | None = None,
        symlink_target: str = "",
    ) -> ObjectMeta:
        """Publish staged bytes as ``bucket/key``, replacing any previous object atomically.

        ``if_absent`` (``x-oss-forbid-overwrite: true``): 409 FileAlreadyExists instead of replacing,
        decided under the publish lock so two racing writers cannot both win.
        """
        meta_path = self._meta_path(bucket, key)
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        data_name = f"{meta_path.stem}.{uuid.uuid4().hex}.data"
        meta = ObjectMeta(
            bucket=bucket,
            key=key,
            size=staged.size,
            etag=etag or staged.etag,
            crc64=str(staged.crc64),
            content_type=content_type,
            last_modified=datetime.now(UTC).timestamp(),
            user_meta=dict(user_meta),
            object_type=object_type,
            data_file=data_name,
            headers=dict(headers or {}),
            acl=acl,
            tags=dict(tags or {}),
            symlink_target=symlink_target,
        )
        with self._lock:
            previous = self._read_meta(meta_path)
            if if_absent and previous is not None:
                staged.discard()
                raise StorageError(
                    "FileAlreadyExists",
                    "The object you specified already exists and can not be overwritten.",
                    409,
                )
            os.replace(staged.path, meta_path.parent / data_name)
            _atomic_write_json(meta_path, asdict(meta))
            if previous is not None:
                (meta_path.parent / previous.data_file).unlink(missing_ok=True)
        return meta

    def _read_meta(self, meta_path: Path) -> ObjectMeta | None:
        try:
            raw = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return ObjectMeta(**raw)

    def head(self, bucket: str, key: str) -> ObjectMeta | None:
        return self._read_meta(self._meta_path(bucket, key))

    def open(self, bucket: str, key: str) -> tuple[ObjectMeta, BinaryIO] | None:
        """Metadata and an open handle on the same version (a later overwrite cannot tear it).

        An overwrite published between reading the metadata and opening its data file deletes that
        file: read the newer metadata and try again, for as long as writers keep publishing newer
        versions (OSS answers an existing key with some whole version, never 404). Only a data file
        missing under metadata that did not change is an error.
        """
        meta_path = self._meta_path(bucket, key)
        meta = self._read_meta(meta_path)
        while meta is not None:
            try:
                return meta, (meta_path.parent / meta.data_file).open("rb")
            except FileNotFoundError:
                newer = self._read_meta(meta_path)
                if newer is not None and newer.data_file == meta.data_file:
                    raise
                meta = newer
        return None

    def delete(self, bucket: str, key: str) -> bool:
        meta_path = self._meta_path(bucket, key)
        with self._lock:
            meta = self._read_meta(meta_path)
            if meta is None:
                return False
            meta_path.unlink(missing_ok=True)
            (meta_path.parent / meta.data_file).unlink(missing_ok=True)
        return True

    def iter_objects(self, bucket: str | None = None) -> Iterator[ObjectMeta]:
        """Every stored object (of one bucket), in key order: listings and test audits."""
        found = []
        for meta_path in self.objects.glob("*/*.json"):
            if not _META_NAME.fullmatch(meta_path.name):
                continue  # a writer's temporary file (.tmp-*.json), not yet (or never) published
            meta = self._read_meta(meta_path)
            if meta is not None and (bucket is None or meta.bucket == bucket):
                found.append(meta)
        yield from sorted(found, key=lambda m: (m.bucket, m.key))

    # ------------------------------------------------------------------ multipart

    def _upload_dir(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.match(upload_id):
            raise StorageError("NoSuchUpload", "The specified upload does not exist.", 404)
        return self.uploads / upload_id

    def initiate(
        self,
        bucket: str,
        key: str,
        *,
        content_type: str,
        user_meta: Mapping[str, str],
        headers: Mapping[str, str] | None = None,
        acl: str = "default",
        tags: Mapping[str, str] | None = None,
    ) -> UploadMeta:
        upload = UploadMeta(
            upload_id=uuid.uuid4().hex.upper(),
            bucket=bucket,
            key=key,
            content_type=content_type,
            user_meta=dict(user_meta),
            initiated=datetime.now(UTC).timestamp(),
            headers=dict(headers or {}),
            acl=acl,
            tags=dict(tags or {}),
        )
        directory = self.uploads / upload.upload_id
        directory.mkdir(parents=True)
        _atomic_write_json(directory / "upload.json", asdict(upload))
        return upload

    def upload(self, upload_id: str, bucket: str, key: str) -> UploadMeta:
        """The upload, which must belong to exactly this bucket and key (else NoSuchUpload)."""
        directory = self._upload_dir(upload_id)
        try:
            raw = json.loads((directory / "upload.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StorageError("NoSuchUpload", "The specified upload does not exist.", 404) from None
        upload = UploadMeta(**raw)
        if (upload.bucket, upload.key) != (bucket, key):
            raise StorageError("NoSuchUpload", "The specified upload does not exist.", 404)
        return upload

    def put_part(self, upload: UploadMeta, number: int, staged: Staged) -> PartMeta:
        directory = self._upload_dir(upload.upload_id)
        part = PartMeta(number, staged.size, staged.etag, str(staged.crc64), datetime.now(UTC).timestamp())
        with self._lock:
            if not (directory / "upload.json").exists():
                staged.discard()
                raise StorageError("NoSuchUpload", "The specified upload does not exist.", 404)
            os.replace(staged.path, directory / f"{number:05d}.part")
            _atomic_write_json(directory / f"{number:05d}.json", asdict(part))
        return part

    @contextmanager
    def completing(self, upload: UploadMeta) -> Iterator[UploadMeta]:
        """Take the upload out of the open ones for the length of a CompleteMultipartUpload.

        Exactly one caller wins a race on one upload id (a rename is atomic); the others, and any
        part still arriving, get NoSuchUpload, as OSS answers the later completes. When the body
        fails (a bad part list, a failed write) the upload is put back, still open; when it returns,
        the upload is gone.
        """
        source = self._upload_dir(upload.upload_id)
        claimed = self.uploads / f".completing-{upload.upload_id}"
        with self._lock:
            try:
                os.rename(source, claimed)
            except OSError:  # gone (completed, aborted) or being completed by another request
                raise StorageError("NoSuchUpload", "The specified upload does not exist.", 404) from None
        self._claimed[upload.upload_id] = claimed
        try:
            yield upload
        except BaseException:
            with self._lock:
                self._claimed.pop(upload.upload_id, None)
                os.rename(claimed, source)
            raise
        with self._lock:
            self._claimed.pop(upload.upload_id, None)
            shutil.rmtree(claimed, ignore_errors=True)

    def _parts_dir(self, upload: UploadMeta) -> Path:
        """Where an upload's parts are: its own directory, or the one it was moved to while completing."""
        return self._claimed.get(upload.upload_id) or self._upload_dir(upload.upload_id)

    def parts(self, upload: UploadMeta) -> list[PartMeta]:
        directory = self._parts_dir(upload)
        found = []
        for path in sorted(directory.glob("[0-9]*.json")):
            try:
                found.append(PartMeta(**json.loads(path.read_text(encoding="utf-8"))))
            except FileNotFoundError:
                continue
        return found

    def assemble(self, upload: UploadMeta, numbers: list[int]) -> Staged:
        """Concatenate the chosen parts into a staged file (hashing it), parts left in place."""
        directory = self._parts_dir(upload)
        handles = []
        try:
            for number in numbers:
                handles.append((directory / f"{number:05d}.part").open("rb"))
        except FileNotFoundError:
            for handle in handles:
                handle.close()
            raise StorageError(
                "InvalidPart", "One or more of the specified parts could not be found."
            ) from None
        try:
            return self._write_hashed(handles, prefix="assemble-", limit=None)
        finally:
            for handle in handles:
                handle.close()

    def drop_upload(self, upload: UploadMeta) -> None:
        with self._lock:
            shutil.rmtree(self._upload_dir(upload.upload_id), ignore_errors=True)
