"""The sandbox's OSS endpoint: a WSGI app that authenticates, authorizes and stores like OSS.

Its job is to refuse what Alibaba Cloud would refuse (bad signature, unknown key, expired token,
a session policy that does not cover the key) with the same codes, so the project's promise
"a token for user 7 cannot write into user 8's folder" is proven with the official clients.

Addressing rule. A request path is read in every way a client could have meant it: path style
``/<bucket>/<key>`` (oss2, alibabacloud-oss-v2 and ali-oss ``sldEnable`` with an IP endpoint),
cname style ``/<key>`` for the configured bucket (ali-oss ``cname: true``), and virtual-host style
when the Host header names a bucket. Every OSS signature covers ``/<bucket>/<key>``, so the sandbox
keeps the reading whose signature verifies: a cname client whose key starts with
``<bucket>/`` is therefore not mistaken for a path-style one, and a path-style request to another
bucket is recognised as such (and refused by policy or with NoSuchBucket), never written into the
configured bucket. Unsigned requests are refused before the ambiguity matters. PostObject signs
only its policy: it goes to ``/`` (the configured bucket) or ``/<bucket>``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import ipaddress
import json
import logging
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, quote, unquote

from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.http import http_date, parse_date
from werkzeug.wrappers import Request, Response

from core.aliyun_names import BUCKET_NAME, SYMLINK_OBJECT_TYPE
from sandbox import bucket_config, oss_auth
from sandbox.config import SandboxConfig
from sandbox.errors import OssError
from sandbox.events import CERT_PATH, EventPublisher, ObjectChange, principal_id
from sandbox.oss_auth import AuthError, RequestFacts, is_decimal
from sandbox.policy import bucket_resource, is_allowed, object_resource
from sandbox.storage import (
    MAX_OBJECT_SIZE,
    MAX_PART_NUMBER,
    MIN_PART_SIZE,
    ObjectMeta,
    Staged,
    Storage,
    StorageError,
)
from sandbox.tokens import CredentialError, Principal, resolve_principal

logger = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

MAX_KEY_BYTES = 1023
MAX_DELETE_KEYS = 1000  # DeleteMultipleObjects: at most 1,000 keys per request
SANDBOX_PREFIX = "/__sandbox__/"
MAX_XML_BODY = 2 * 1024 * 1024
DRAIN_LIMIT = 64 * 1024 * 1024
POLICY_DENIED = "Access denied by authorizer's policy."
# Standard headers OSS keeps from an upload (PutObject, multipart, PostObject, CopyObject REPLACE).
STANDARD_OBJECT_HEADERS = (
    "Cache-Control",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Expires",
)
SYMLINK = SYMLINK_OBJECT_TYPE
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
# Bucket sub-resources whose action name is not simply <Verb>Bucket<Subresource>.
_BUCKET_ACTIONS = {
    ("GET", ""): "oss:ListObjects",
    ("PUT", ""): "oss:PutBucket",
    ("DELETE", ""): "oss:DeleteBucket",
    ("HEAD", ""): "oss:GetBucketInfo",
    ("GET", "uploads"): "oss:ListMultipartUploads",
    ("GET", "versions"): "oss:ListObjectVersions",
    ("POST", "delete"): "oss:DeleteObject",
}
_BUCKET_SUBRESOURCES = (
    "acl", "bucketInfo", "cors", "delete", "encryption", "lifecycle", "location", "logging",
    "policy", "referer", "replication", "stat", "tagging", "uploads", "versioning", "versions",
    "website", "worm",
)  # fmt: skip


class NotModified(Exception):
    """If-None-Match / If-Modified-Since held: 304 with the object's validators and no body."""

    def __init__(self, meta: ObjectMeta) -> None:
        super().__init__("not modified")
        self.meta = meta


def _not_implemented(what: str) -> OssError:
    return OssError("NotImplemented", f"{what} is not supported by the sandbox.", 501)


class _OssRequest(Request):
    """Werkzeug request with PostObject-sized limits (5 GB file, small text fields)."""

    max_content_length = MAX_OBJECT_SIZE + 1024 * 1024
    max_form_memory_size = 1024 * 1024
    max_form_parts = 200
    # Set while the request is handled: its x-oss-request-id and who signed it (for event notifications).
    request_id: str = ""
    principal: Principal | None = None


@dataclass(frozen=True)
class Target:
    """The (bucket, key) a request addresses; bucket None means the service (``GET /``)."""

    bucket: str | None
    key: str


@dataclass(frozen=True)
class Operation:
    """What the request does and which (action, resource) pairs must be allowed."""

    name: str
    grants: tuple[tuple[str, str], ...]


def make_oss_app(config: SandboxConfig, *, events: EventPublisher | None = None) -> WSGIApp:
    """Build the OSS WSGI app for one configured bucket, storing under ``config.data_dir``.

    With ``events``, every object write and delete is announced through it (sandbox/events.py), and
    the app serves the push-signing certificate at ``events.CERT_PATH``.
    """
    return OssApp(config, events=events)


class OssApp:
    """Request lifecycle: CORS preflight, authenticate, authorize, dispatch, decorate."""

    def __init__(self, config: SandboxConfig, *, events: EventPublisher | None = None) -> None:
        self.config = config
        self.storage = Storage(config.data_dir)
        self.events = events

    # ------------------------------------------------------------------ WSGI entry

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = _OssRequest(environ)
        request_id = secrets.token_hex(12).upper()
        request.request_id = request_id
        try:
            response = self._handle(request, request_id)
        except NotModified as answer:
            response = Response(
                status=304,
                headers={"ETag": answer.meta.etag, "Last-Modified": http_date(answer.meta.last_modified)},
            )
            response.headers.pop("Content-Type", None)
        except (OssError, AuthError, StorageError) as exc:
            response = self._error(
                request, request_id, exc.code, exc.message, exc.status, getattr(exc, "extra", {})
            )
        except CredentialError as exc:
            response = self._error(request, request_id, exc.code, exc.message, exc.http_status, {})
        except RequestEntityTooLarge:
            response = self._error(
                request,
                request_id,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size.",
                400,
                {},
            )
        except HTTPException as exc:
            response = self._error(
                request, request_id, "InvalidArgument", exc.description or "Bad request.", 400, {}
            )
        except Exception:
            logger.exception("sandbox OSS internal error (request %s %s)", request.method, request_id)
            response = self._error(
                request,
                request_id,
                "InternalError",
                "We encountered an internal error. Please try again.",
                500,
                {},
            )
        if response.status_code >= 400:
            _drain(request, response)
        self._decorate(request, response, request_id)
        logger.debug("oss %s %s -> %s", request.method, request_id, response.status_code)
        return response(environ, start_response)

    def _handle(self, request: Request, request_id: str) -> Response:
        if request.method == "OPTIONS":
            return self._preflight(request)
        if request.path.startswith(SANDBOX_PREFIX):  # never a bucket: bucket names have no "_"
            return self._sandbox_page(request)
        path = _decoded_path(request)
        now = self.config.faults.now()
        if request.method == "POST" and request.mimetype == "multipart/form-data":
            return self._post_object(request, path, now)
        facts = RequestFacts(
            method=request.method,
            headers={name.lower(): value for name, value in request.headers.items()},
            query=list(request.args.items(multi=True)),
        )
        credential = oss_auth.parse_credential(facts, now)
        if credential is None and bucket_config.anonymous_read_allowed(self.config, request.method):
            return self._anonymous_read(request, path)
        if credential is None:
            raise OssError(
                "AccessDenied", "You have no right to access this object because of bucket acl.", 403
            )
        principal = self._principal(credential.access_key_id, credential.security_token, now)
        request.principal = principal
        if credential.version == "v4":
            self._check_region(credential.v4_region)
        target = self._verified_target(credential, principal, facts, path, request.host)
        _validate_key(target.key)
        operation = _classify(request, target, self.config)
        self._authorize(request, principal, operation, now)
        if target.bucket is None:
            raise _not_implemented(operation.name)
        if target.bucket != self.config.bucket:
            raise OssError(
                "NoSuchBucket", "The specified bucket does not exist.", 404, BucketName=target.bucket
            )
        if operation.name in bucket_config.OPERATIONS:
            return bucket_config.handle_bucket_config(self.config, operation.name, request)
        if operation.name in ("GetObject", "HeadObject"):
            link = self.storage.head(target.bucket, target.key)
            if link is not None and link.object_type == SYMLINK and self.config.symlink_reads != "link-only":
                # OSS checks the target's access as well when a read goes through a link; by default
                # the sandbox reads that strictly: the principal must also be allowed oss:GetObject on
                # the target (SandboxConfig.symlink_reads).
                read = ("oss:GetObject", _object_arn(self.config, target.bucket, link.symlink_target))
                self._authorize(request, principal, Operation(operation.name, (read,)), now)
        handler = getattr(self, f"_op_{operation.name}", None)
        if handler is None:
            raise _not_implemented(operation.name)
        return handler(request, target)

    # ------------------------------------------------------------------ authentication

    def _principal(self, access_key_id: str, security_token: str | None, now: datetime) -> Principal:
        return resolve_principal(
            self.config, access_key_id=access_key_id, security_token=security_token, now=now
        )

    def _check_region(self, region: str) -> None:
        if region != self.config.region:
            raise OssError("SignatureDoesNotMatch", "Invalid signing region in Authorization header.", 403)

    def _verified_target(
        self, credential: oss_auth.Credential, principal: Principal, facts: RequestFacts, path: str, host: str
    ) -> Target:
        for target in _candidate_targets(path, self.config.bucket, host):
            if oss_auth.signature_matches(credential, principal.secret, facts, target.bucket, target.key):
                return target
        raise OssError(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
            403,
        )

    def _authorize(self, request: Request, principal: Principal, operation: Operation, now: datetime) -> None:
        """Every (action, resource) of the operation must pass the principal's policies (Deny first)."""
        context = {
            "acs:SourceIp": request.remote_addr or "",
            "acs:UserAgent": request.headers.get("User-Agent", ""),
            "acs:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "acs:SecureTransport": "true" if request.scheme == "https" else "false",
            "acs:AccessId": principal.access_key_id,
        }
        if operation.name == "ListObjects":
            context["oss:Prefix"] = request.args.get("prefix", "")
            context["oss:Delimiter"] = request.args.get("delimiter", "")
        for action, resource in operation.grants:
            if not is_allowed(principal.policies, action, resource, context):
                raise OssError("AccessDenied", POLICY_DENIED, 403)

    def _anonymous_read(self, request: Request, path: str) -> Response:
        """An unsigned GET/HEAD of a public-read bucket: objects and listing, nothing else."""
        target = _candidate_targets(path, self.config.bucket, request.host)[0]
        _validate_key(target.key)
        operation = _classify(request, target, self.config) if target.bucket == self.config.bucket else None
        if operation is None or operation.name not in ("GetObject", "HeadObject", "ListObjects"):
            raise OssError(
                "AccessDenied", "You have no right to access this object because of bucket acl.", 403
            )
        return getattr(self, f"_op_{operation.name}")(request, target)

    # ------------------------------------------------------------------ objects

    def _op_PutObject(self, request: Request, target: Target) -> Response:
        _refuse_callback(request)
        key = target.key
        acl, tags = _object_acl(request.headers) or "default", _tagging(request.headers) or {}
        if request.headers.get("x-oss-forbid-overwrite", "").lower() == "true" and self.storage.head(
            self.config.bucket, key
        ):
            raise OssError(
                "FileAlreadyExists",
                "The object you specified already exists and can not be overwritten.",
                409,
            )
        staged = self._receive(request)
        previous = self.storage.head(self.config.bucket, key)
        meta = self.storage.commit(
            self.config.bucket,
            key,
            staged,
            content_type=_content_type(request.headers.get("Content-Type")),
            user_meta=_user_meta(request.headers.items()),
            headers=_standard_headers(request.headers.items()),
            acl=acl,
            tags=tags,
        )
        self._announce(request, "PutObject", meta, previous)
        return _empty(
            200, {"ETag": meta.etag, "x-oss-hash-crc64ecma": meta.crc64, "Content-MD5": staged.content_md5}
        )

    def _op_CopyObject(self, request: Request, target: Target) -> Response:
        source_bucket, source_key = _copy_source(request)
        if source_bucket != self.config.bucket:
            raise OssError(
                "NoSuchBucket", "The specified bucket does not exist.", 404, BucketName=source_bucket
            )
        opened = self.storage.open(source_bucket, source_key)
        if opened is None:
            raise OssError("NoSuchKey", "The specified key does not exist.", 404, Key=source_key)
        source, handle = opened
        with handle:
            # A link's precondition is judged on the ETag HEAD reports for it (its target's); which
            # ETag OSS compares here is not documented, and this reading is the one a caller that
            # checked the object with HEAD and GET would be fooled by.
            compared = self._resolved_meta(source) if source.object_type == SYMLINK else source
            expected = request.headers.get("x-oss-copy-source-if-match")
            if expected is not None and _etag_value(expected) != _etag_value(compared.etag):
                raise OssError(
                    "PreconditionFailed",
                    "At least one of the pre-conditions you specified did not hold.",
                    412,
                )
            staged = self.storage.stage(handle)
        previous = self.storage.head(self.config.bucket, target.key)
        replace = request.headers.get("x-oss-metadata-directive", "COPY").upper() == "REPLACE"
        # x-oss-tagging-directive: Copy (the default) keeps the source's tags, Replace takes x-oss-tagging.
        tags = (
            _tagging(request.headers)
            if request.headers.get("x-oss-tagging-directive", "").lower() == "replace"
            else None
        )
        meta = self.storage.commit(
            self.config.bucket,
            target.key,
            staged,
            content_type=_content_type(request.headers.get("Content-Type"))
            if replace
            else source.content_type,
            user_meta=_user_meta(request.headers.items()) if replace else source.user_meta,
            headers=_standard_headers(request.headers.items()) if replace else source.headers,
            acl=_object_acl(request.headers) or "default",
            tags=tags if tags is not None else source.tags,
            # Alibaba: "If the source object is a symbolic link, only the symbolic link is copied."
            object_type=source.object_type if source.object_type == SYMLINK else "Normal",
            symlink_target=source.symlink_target,
        )
        self._announce(request, "CopyObject", meta, previous)
        body = _xml("CopyObjectResult", [("ETag", meta.etag), ("LastModified", _iso(meta.last_modified))])
        return _xml_response(body, headers={"x-oss-hash-crc64ecma": meta.crc64})

    def _resolved_meta(self, link: ObjectMeta) -> ObjectMeta:
        """What GET and HEAD answer for a link: Alibaba's HeadObject gives the target's Content-Length
        and ETag, the later of the two Last-Modified, and the link's own other headers
        (``x-oss-object-type: Symlink``); the body is the target's."""
        found = self.storage.head(link.bucket, link.symlink_target)
        if found is None:
            raise OssError("SymlinkTargetNotExist", "The symlink target object does not exist.", 404)
        if found.object_type == SYMLINK:
            raise OssError("InvalidTargetType", "The symlink target object type is not supported.")
        return replace(
            link,
            size=found.size,
            etag=found.etag,
            crc64=found.crc64,
            last_modified=max(link.last_modified, found.last_modified),
            data_file=found.data_file,
        )

    def _open_resolved(self, key: str) -> tuple[ObjectMeta, BinaryIO] | None:
        """``storage.open``, through a link to its target (GetObject reads the target's bytes)."""
        opened = self.storage.open(self.config.bucket, key)
        if opened is None or opened[0].object_type != SYMLINK:
            return opened
        link, handle = opened
        handle.close()
        meta = self._resolved_meta(link)
        found = self.storage.open(self.config.bucket, link.symlink_target)
        if found is None:
            raise OssError("SymlinkTargetNotExist", "The symlink target object does not exist.", 404)
        return replace(meta, size=found[0].size, etag=found[0].etag, crc64=found[0].crc64), found[1]

    def _op_PutSymlink(self, request: Request, target: Target) -> Response:
        link_target = unquote(request.headers.get("x-oss-symlink-target", ""))
        if not link_target:
            raise OssError("InvalidArgument", "x-oss-symlink-target is required.")
        _validate_key(link_target)
        if request.headers.get("x-oss-forbid-overwrite", "").lower() == "true" and self.storage.head(
            self.config.bucket, target.key
        ):
            raise OssError(
                "FileAlreadyExists",
                "The object you specified already exists and can not be overwritten.",
                409,
            )
        meta = self.storage.commit(
            self.config.bucket,
            target.key,
            self.storage.stage(io.BytesIO(b"")),
            content_type=_content_type(request.headers.get("Content-Type")),
            user_meta=_user_meta(request.headers.items()),
            object_type=SYMLINK,
            acl=_object_acl(request.headers) or "default",
            tags=_tagging(request.headers) or {},
            symlink_target=link_target,
        )
        return _empty(200, {"ETag": meta.etag})

    def _op_GetSymlink(self, request: Request, target: Target) -> Response:
        meta = self.storage.head(self.config.bucket, target.key)
        if meta is None:
            raise OssError("NoSuchKey", "The specified key does not exist.", 404, Key=target.key)
        if meta.object_type != SYMLINK:
            raise OssError("NotSymlink", "The specified object is not a symlink.")
        headers = {
            "ETag": meta.etag,
            "Last-Modified": http_date(meta.last_modified),
            "x-oss-symlink-target": quote(meta.symlink_target, safe=""),
        }
        return _empty(200, headers)

    def _op_GetObject(self, request: Request, target: Target) -> Response:
        opened = self._open_resolved(target.key)
        if opened is None:
            raise OssError("NoSuchKey", "The specified key does not exist.", 404, Key=target.key)
        meta, handle = opened
        try:
            _check_preconditions(request, meta)
        except BaseException:
            handle.close()
            raise
        headers = _object_headers(meta)
        for parameter, header in RESPONSE_OVERRIDES.items():
            if parameter in request.args:
                headers[header] = request.args[parameter]
        start, length, status = 0, meta.size, 200
        if request.range is not None:
            span = request.range.range_for_length(meta.size)
            content_range = request.range.to_content_range_header(meta.size)
            if span is not None and content_range is not None:
                start, length, status = span[0], span[1] - span[0], 206
                headers["Content-Range"] = content_range
        headers["Content-Length"] = str(length)
        return Response(
            _read_span(handle, start, length), status=status, headers=headers, direct_passthrough=True
        )

    def _op_HeadObject(self, request: Request, target: Target) -> Response:
        meta = self.storage.head(self.config.bucket, target.key)
        if meta is None:
            raise OssError("NoSuchKey", "The specified key does not exist.", 404, Key=target.key)
        if meta.object_type == SYMLINK:
            meta = self._resolved_meta(meta)
        _check_preconditions(request, meta)
        headers = _object_headers(meta)
        headers["Content-Length"] = str(meta.size)
        response = Response(status=200, headers=headers)
        response.automatically_set_content_length = False
        return response

    def _op_DeleteObject(self, request: Request, target: Target) -> Response:
        self._delete(request, "DeleteObject", target.key)
        return _empty(204)

    def _delete(self, request: Request, event: str, key: str) -> None:
        """Delete one key (absent is fine, as on OSS) and announce it either way."""
        previous = self.storage.head(self.config.bucket, key)
        self.storage.delete(self.config.bucket, key)
        self._announce_change(
            request,
            event,
            key,
            size=0,
            etag=previous.etag if previous else "",
            previous_size=previous.size if previous else 0,
        )

    def _op_DeleteMultipleObjects(self, request: Request, target: Target) -> Response:
        """``POST /?delete``: up to 1,000 keys; each needs oss:DeleteObject, or nothing is deleted.

        The body must carry a matching Content-MD5 (Alibaba's DeleteMultipleObjects requires it).
        Answers ``<DeleteResult>`` listing the deleted keys (none when ``<Quiet>true</Quiet>``).
        """
        body = _read_small_body(request)
        given_md5 = request.headers.get("Content-MD5", "").strip()
        if not given_md5:
            raise OssError("MissingArgument", "Missing Some Required Arguments.", ArgumentName="Content-MD5")
        if given_md5 != base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode():
            raise OssError("InvalidDigest", "The Content-MD5 you specified was invalid.")
        quiet, keys = _delete_request(body)
        now = self.config.faults.now()
        grants = tuple(
            ("oss:DeleteObject", _object_arn(self.config, self.config.bucket, key)) for key in keys
        )
        if request.principal is not None:
            self._authorize(request, request.principal, Operation("DeleteMultipleObjects", grants), now)
        for key in keys:
            self._delete(request, "DeleteObjects", key)
        encode = _encoder(request)
        deleted = [] if quiet else [("Deleted", [("Key", encode(key))]) for key in keys]
        return _xml_response(_xml("DeleteResult", [*_encoding_element(request), *deleted]))

    def _op_AppendObject(self, request: Request, target: Target) -> Response:
        """``POST /key?append&position=N``: add the body at the end of an Appendable object.

        ``position`` must be the current length (409 PositionNotEqualToLength, with
        ``x-oss-next-append-position``); a Normal or Multipart object is 409 ObjectNotAppendable.
        """
        position = _bounded_int(request.args.get("position"), "position", 0, MAX_OBJECT_SIZE, -1)
        if position < 0:
            raise OssError(
                "InvalidArgument", "Position is required for AppendObject.", ArgumentName="position"
            )
        previous = self.storage.head(self.config.bucket, target.key)
        length = previous.size if previous else 0
        if previous is not None and previous.object_type != "Appendable":
            raise OssError("ObjectNotAppendable", "The object is not appendable.", 409)
        if position != length:
            raise OssError(
                "PositionNotEqualToLength",
                "Position is not equal to file length.",
                409,
                **{"x-oss-next-append-position": str(length)},
            )
        staged = self._receive(request)
        if previous is not None:
            opened = self.storage.open(self.config.bucket, target.key)
            if opened is None or opened[0].size != length:
                staged.discard()
                raise OssError("PositionNotEqualToLength", "Position is not equal to file length.", 409)
            with opened[1] as old, staged.path.open("rb") as new:
                whole = self.storage.stage_all([old, new])
            staged.discard()
        else:
            whole = staged
        meta = self.storage.commit(
            self.config.bucket,
            target.key,
            whole,
            content_type=previous.content_type
            if previous
            else _content_type(request.headers.get("Content-Type")),
            user_meta=previous.user_meta if previous else _user_meta(request.headers.items()),
            headers=previous.headers if previous else _standard_headers(request.headers.items()),
            object_type="Appendable",
            acl=previous.acl if previous else (_object_acl(request.headers) or "default"),
            tags=previous.tags if previous else (_tagging(request.headers) or {}),
        )
        self._announce(request, "AppendObject", meta, previous, position=position)
        return _empty(
            200,
            {
                "ETag": meta.etag,
                "x-oss-hash-crc64ecma": meta.crc64,
                "x-oss-next-append-position": str(meta.size),
            },
        )

    # ------------------------------------------------------------------ event notifications

    def _announce(
        self,
        request: Request,
        event: str,
        meta: ObjectMeta,
        previous: ObjectMeta | None,
        *,
        position: int | None = None,
    ) -> None:
        """Announce a write of ``meta`` (replacing ``previous``, if any) as OSS's event rule would."""
        self._announce_change(
            request,
            event,
            meta.key,
            size=meta.size,
            etag=meta.etag,
            previous_size=previous.size if previous else 0,
            position=position,
        )

    def _announce_change(
        self,
        request: Request,
        event: str,
        key: str,
        *,
        size: int,
        etag: str,
        previous_size: int,
        position: int | None = None,
    ) -> None:
        if self.events is None or not self.config.event_endpoint:
            return
        principal = getattr(request, "principal", None)
        change = ObjectChange(
            name=event,
            key=key,
            size=size,
            previous_size=previous_size,
            etag=etag,
            request_id=getattr(request, "request_id", ""),
            source_ip=request.remote_addr or "",
            principal_id=principal_id(self.config, principal) if principal is not None else "",
            position=position,
        )
        self.events.publish([change])

    def _sandbox_page(self, request: Request) -> Response:
        """The sandbox's own pages under its OSS origin: the push-signing certificate, push counters,
        and the last pushes (``?last=N``). Not part of OSS."""
        if request.method not in ("GET", "HEAD"):
            raise OssError(
                "MethodNotAllowed", "The specified method is not allowed against this resource.", 405
            )
        if request.path == CERT_PATH and self.events is not None:
            return Response(self.events.certificate_pem, content_type="application/x-pem-file")
        if request.path == "/__sandbox__/stats":
            stats = {
                "events": self.events.snapshot() if self.events else {},
                "sts": self.config.faults.snapshot(),
            }
            return Response(json.dumps(stats), content_type="application/json")
        if request.path == "/__sandbox__/events" and self.events is not None:
            last = _bounded_int(request.args.get("last"), "last", 1, 500, 20)
            return Response(json.dumps(self.events.recent(last)), content_type="application/json")
        raise OssError("NoSuchKey", "The specified key does not exist.", 404)

    # ------------------------------------------------------------------ listing

    def _op_ListObjects(self, request: Request, target: Target) -> Response:
        """ListObjects (``marker``) and ListObjectsV2 (``list-type=2``), in key order, by prefix and delimiter."""
        args, encode = request.args, _encoder(request)
        v2 = args.get("list-type") == "2"
        prefix, delimiter = args.get("prefix", ""), args.get("delimiter", "")
        max_keys = _bounded_int(args.get("max-keys"), "max-keys", 1, 1000, 100)
        token = args.get("continuation-token", "") if v2 else ""
        after = _token_key(token) if token else args.get("start-after" if v2 else "marker", "")
        contents: list[ObjectMeta] = []
        common: list[str] = []
        last, truncated = "", False
        for meta in self.storage.iter_objects(self.config.bucket):
            if not meta.key.startswith(prefix) or meta.key <= after:
                continue
            cut = meta.key.find(delimiter, len(prefix)) if delimiter else -1
            folder = meta.key[: cut + len(delimiter)] if cut >= 0 else None
            if folder is not None and (after.startswith(folder) or (common and common[-1] == folder)):
                continue  # that folder was listed already
            if len(contents) + len(common) == max_keys:
                truncated = True
                break
            if folder is not None:
                common.append(folder)
                last = folder
            else:
                contents.append(meta)
                last = meta.key
        children: list[tuple[str, Any]] = [("Name", self.config.bucket), ("Prefix", encode(prefix))]
        if v2:
            if args.get("start-after"):
                children.append(("StartAfter", encode(args["start-after"])))
            if token:
                children.append(("ContinuationToken", token))
        else:
            children.append(("Marker", encode(args.get("marker", ""))))
        children += [
            ("MaxKeys", str(max_keys)),
            ("Delimiter", encode(delimiter)),
            ("IsTruncated", "true" if truncated else "false"),
        ]
        if truncated:
            children.append(
                ("NextContinuationToken", _key_token(last)) if v2 else ("NextMarker", encode(last))
            )
        if v2:
            children.append(("KeyCount", str(len(contents) + len(common))))
        children += _encoding_element(request)
        for meta in contents:
            item = [
                ("Key", encode(meta.key)),
                ("LastModified", _iso(meta.last_modified)),
                ("ETag", meta.etag),
                ("Type", meta.object_type),
                ("Size", str(meta.size)),
                ("StorageClass", "Standard"),
            ]
            children.append(("Contents", item))
        children += [("CommonPrefixes", [("Prefix", encode(folder))]) for folder in common]
        return _xml_response(_xml("ListBucketResult", children))

    # ------------------------------------------------------------------ multipart

    def _op_InitiateMultipartUpload(self, request: Request, target: Target) -> Response:
        _refuse_callback(request)
        upload = self.storage.initiate(
            self.config.bucket,
            target.key,
            content_type=_content_type(request.headers.get("Content-Type")),
            user_meta=_user_meta(request.headers.items()),
            headers=_standard_headers(request.headers.items()),
            acl=_object_acl(request.headers) or "default",
            tags=_tagging(request.headers) or {},
        )
        encode = _encoder(request)
        return _xml_response(
            _xml(
                "InitiateMultipartUploadResult",
                [
                    *_encoding_element(request),
                    ("Bucket", upload.bucket),
                    ("Key", encode(upload.key)),
                    ("UploadId", upload.upload_id),
                ],
            )
        )

    def _op_UploadPart(self, request: Request, target: Target) -> Response:
        number = _part_number(request.args.get("partNumber", ""))
        upload = self.storage.upload(request.args.get("uploadId", ""), self.config.bucket, target.key)
        staged = self._receive(request)
        part = self.storage.put_part(upload, number, staged)
        return _empty(
            200, {"ETag": part.etag, "x-oss-hash-crc64ecma": part.crc64, "Content-MD5": staged.content_md5}
        )

    def _op_CompleteMultipartUpload(self, request: Request, target: Target) -> Response:
        _refuse_callback(request)
        upload = self.storage.upload(request.args.get("uploadId", ""), self.config.bucket, target.key)
        complete_all = request.headers.get("x-oss-complete-all", "").lower() == "yes"
        body = _read_small_body(request)
        if complete_all and body:
            raise OssError("InvalidArgument", "With x-oss-complete-all the body must be empty.")
        # Concurrent completes of one upload: the first takes it, the others answer NoSuchUpload.
        with self.storage.completing(upload):
            stored = {part.number: part for part in self.storage.parts(upload)}
            chosen = sorted(stored) if complete_all else _requested_parts(body, stored)
            if not chosen:
                raise OssError("InvalidPart", "The upload has no parts to complete.")
            for number in chosen[:-1]:
                if stored[number].size < MIN_PART_SIZE:
                    raise OssError(
                        "EntityTooSmall",
                        "Your proposed upload is smaller than the minimum allowed size.",
                        400,
                        PartNumber=str(number),
                        MinSizeAllowed=str(MIN_PART_SIZE),
                    )
            digests = b"".join(bytes.fromhex(stored[n].etag.strip('"')) for n in chosen)
            etag = f'"{hashlib.md5(digests, usedforsecurity=False).hexdigest().upper()}-{len(chosen)}"'
            staged = self.storage.assemble(upload, chosen)
            previous = self.storage.head(upload.bucket, upload.key)
            meta = self.storage.commit(
                upload.bucket,
                upload.key,
                staged,
                content_type=upload.content_type,
                user_meta=upload.user_meta,
                etag=etag,
                object_type="Multipart",
                headers=upload.headers,
                acl=upload.acl,
                tags=upload.tags,
            )
        self._announce(request, "CompleteMultipartUpload", meta, previous)
        encode = _encoder(request)
        answer = _xml(
            "CompleteMultipartUploadResult",
            [
                *_encoding_element(request),
                ("Location", f"{request.host_url}{quote(upload.bucket)}/{quote(upload.key)}"),
                ("Bucket", upload.bucket),
                ("Key", encode(upload.key)),
                ("ETag", meta.etag),
            ],
        )
        return _xml_response(answer, headers={"ETag": meta.etag, "x-oss-hash-crc64ecma": meta.crc64})

    def _op_AbortMultipartUpload(self, request: Request, target: Target) -> Response:
        upload = self.storage.upload(request.args.get("uploadId", ""), self.config.bucket, target.key)
        self.storage.drop_upload(upload)
        return _empty(204)

    def _op_ListParts(self, request: Request, target: Target) -> Response:
        upload = self.storage.upload(request.args.get("uploadId", ""), self.config.bucket, target.key)
        max_parts = _bounded_int(request.args.get("max-parts"), "max-parts", 1, 1000, 1000)
        marker = _bounded_int(
            request.args.get("part-number-marker"), "part-number-marker", 0, MAX_PART_NUMBER, 0
        )
        remaining = [part for part in self.storage.parts(upload) if part.number > marker]
        page, truncated = remaining[:max_parts], len(remaining) > max_parts
        encode = _encoder(request)
        children: list[tuple[str, Any]] = [
            *_encoding_element(request),
            ("Bucket", upload.bucket),
            ("Key", encode(upload.key)),
            ("UploadId", upload.upload_id),
            ("PartNumberMarker", str(marker)),
            ("NextPartNumberMarker", str(page[-1].number if page else marker)),
            ("MaxParts", str(max_parts)),
            ("IsTruncated", "true" if truncated else "false"),
        ]
        for part in page:
            children.append(
                (
                    "Part",
                    [
                        ("PartNumber", str(part.number)),
                        ("LastModified", _iso(part.last_modified)),
                        ("ETag", part.etag),
                        ("HashCrc64ecma", part.crc64),
                        ("Size", str(part.size)),
                    ],
                )
            )
        return _xml_response(_xml("ListPartsResult", children))

    # ------------------------------------------------------------------ PostObject

    def _post_object(self, request: Request, path: str, now: datetime) -> Response:
        bucket = self._post_bucket(path)
        fields, upload = _form(request)
        if upload is None:
            raise OssError(
                "InvalidArgument", "The body of your POST request must contain a field named 'file'."
            )
        key = fields.get("key", "")
        if not key:
            raise OssError("InvalidArgument", "Bucket POST must contain a field named 'key'.")
        key = key.replace("${filename}", upload.filename or "")
        fields["key"] = key
        credential = oss_auth.parse_post_credential(fields)
        if credential is None or not fields.get("policy"):
            raise OssError(
                "AccessDenied", "You have no right to access this object because of bucket acl.", 403
            )
        principal = self._principal(credential.access_key_id, credential.security_token, now)
        request.principal = principal
        if credential.version == "v4":
            self._check_region(credential.v4_region)
        if not oss_auth.post_signature_matches(credential, principal.secret, fields["policy"]):
            raise OssError(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
                403,
            )
        limits = oss_auth.check_post_policy(
            fields["policy"], fields, bucket, now, v4=credential.version == "v4"
        )
        if "callback" in fields:
            raise _not_implemented("Upload callback")
        _validate_key(key)
        resource = _object_arn(self.config, bucket, key)
        # The form's x-oss-object-acl and x-oss-tagging need what the same headers need on PutObject.
        operation = Operation(
            "PostObject", (("oss:PutObject", resource), *_acl_and_tagging(fields, resource))
        )
        self._authorize(request, principal, operation, now)
        acl, tags = _object_acl(fields) or "default", _tagging(fields) or {}
        if bucket != self.config.bucket:
            raise OssError("NoSuchBucket", "The specified bucket does not exist.", 404, BucketName=bucket)
        forbid_overwrite = fields.get("x-oss-forbid-overwrite", "").lower() == "true"
        if forbid_overwrite and self.storage.head(bucket, key) is not None:
            raise OssError(
                "FileAlreadyExists",
                "The object you specified already exists and can not be overwritten.",
                409,
            )
        limit = MAX_OBJECT_SIZE if limits.max_size is None else min(limits.max_size, MAX_OBJECT_SIZE)
        staged = self.storage.stage(upload.stream, limit=limit)
        previous = self.storage.head(bucket, key)
        if staged.size < limits.min_size:
            staged.discard()
            raise OssError("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size.")
        meta = self.storage.commit(
            bucket,
            key,
            staged,
            content_type=_post_content_type(fields, upload),
            user_meta=_user_meta(fields.items()),
            if_absent=forbid_overwrite,
            headers=_standard_headers(fields.items()),
            acl=acl,
            tags=tags,
        )
        self._announce(request, "PostObject", meta, previous)
        headers = {"ETag": meta.etag, "x-oss-hash-crc64ecma": meta.crc64}
        status = fields.get("success_action_status", "")
        if status == "201":
            body = _xml(
                "PostResponse",
                [
                    ("Bucket", bucket),
                    ("Location", f"{request.host_url}{quote(bucket)}/{quote(key)}"),
                    ("Key", key),
                    ("ETag", meta.etag),
                ],
            )
            return _xml_response(body, status=201, headers=headers)
        return _empty(200 if status == "200" else 204, headers)

    def _post_bucket(self, path: str) -> str:
        segments = [segment for segment in path.split("/") if segment]
        if not segments:
            return self.config.bucket
        if len(segments) == 1 and BUCKET_NAME.match(segments[0]):
            return segments[0]
        raise OssError("InvalidArgument", "PostObject must be sent to the bucket, not to an object.")

    # ------------------------------------------------------------------ plumbing

    def _receive(self, request: Request) -> Staged:
        """Stream the body to a staged file, enforcing Content-Length limits and Content-MD5."""
        declared = request.content_length
        if declared is not None and declared > MAX_OBJECT_SIZE:
            raise OssError("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
        staged = self.storage.stage(request.stream)
        expected_md5 = request.headers.get("Content-MD5")
        if expected_md5 is not None and expected_md5.strip() != staged.content_md5:
            staged.discard()
            raise OssError("InvalidDigest", "The Content-MD5 you specified was invalid.")
        return staged

    def _preflight(self, request: Request) -> Response:
        return _empty(200, bucket_config.preflight_headers(self.config, request))

    def _decorate(self, request: Request, response: Response, request_id: str) -> None:
        response.headers["x-oss-request-id"] = request_id
        response.headers["Server"] = "AliyunOSS"
        response.headers["Date"] = http_date(self.config.faults.now())
        if request.method != "OPTIONS":
            response.headers.update(bucket_config.actual_cors_headers(self.config, request))
        if request.headers.get("Origin"):
            response.vary.add("Origin")

    def _error(
        self,
        request: Request,
        request_id: str,
        code: str,
        message: str,
        status: int,
        extra: Mapping[str, str],
    ) -> Response:
        children: list[tuple[str, Any]] = [
            ("Code", code),
            ("Message", message),
            ("RequestId", request_id),
            ("HostId", request.host),
            *extra.items(),
        ]
        body = _xml("Error", children)
        if request.method == "HEAD":
            # No body on HEAD; OSS repeats the error XML, base64-encoded, in x-oss-err (oss2 reads it).
            response = Response(status=status, headers={"x-oss-err": base64.b64encode(body).decode()})
            response.automatically_set_content_length = False
            response.headers["Content-Length"] = "0"
            return response
        return _xml_response(body, status=status)


# ---------------------------------------------------------------------- addressing


def _decoded_path(request: Request) -> str:
    """The percent-decoded path as UTF-8 (``%2F`` is a slash, as OSS decodes it)."""
    raw = request.environ.get("PATH_INFO", "/")
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise OssError("InvalidObjectName", "The object name is not valid UTF-8.") from None


def _candidate_targets(path: str, bucket: str, host: str) -> list[Target]:
    """Every (bucket, key) the path could mean; the signature picks one (see module docstring)."""
    rest = path[1:] if path.startswith("/") else path
    candidates: list[Target] = []
    first, _, remainder = rest.partition("/")
    if first and BUCKET_NAME.match(first):
        candidates.append(Target(first, remainder))
    candidates.append(Target(bucket, rest))
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    label = hostname.split(".", 1)[0]
    if "." in hostname and not _is_ip(hostname) and BUCKET_NAME.match(label):
        candidates.append(Target(label, rest))
    if not rest:
        candidates.append(Target(None, ""))
    unique: list[Target] = []
    for candidate in candidates:
        if candidate not in unique:
            unique.append(candidate)
    return unique


def _is_ip(hostname: str) -> bool:
    try:
        ipaddress.ip_address(hostname.strip("[]"))
    except ValueError:
        return False
    return True


def _validate_key(key: str) -> None:
    if not key:
        return
    if len(key.encode("utf-8")) > MAX_KEY_BYTES or key.startswith(("/", "\\")):
        raise OssError("InvalidObjectName", "The specified object is not valid.")


# ---------------------------------------------------------------------- operations


def _object_arn(config: SandboxConfig, bucket: str, key: str) -> str:
    """The resource OSS checks: this sandbox's region and the bucket owner's account id."""
    return object_resource(bucket, key, region=config.region, owner=config.owner_account_id)


def _classify(request: Request, target: Target, config: SandboxConfig) -> Operation:
    """Name the operation and the RAM action(s) it needs, as OSS documents them."""
    method, args = request.method, request.args
    if target.bucket is None:
        if method == "GET":
            return Operation("ListBuckets", (("oss:ListBuckets", "acs:oss:*:*:*"),))
        raise OssError("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)
    if not target.key:
        sub = next((name for name in _BUCKET_SUBRESOURCES if name in args), "")
        action = _BUCKET_ACTIONS.get((method, sub))
        if action is None:
            verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}.get(method)
            if verb is None or not sub:
                raise OssError(
                    "MethodNotAllowed", "The specified method is not allowed against this resource.", 405
                )
            action = f"oss:{verb}Bucket{sub[0].upper()}{sub[1:]}"
        if (method, sub) == ("POST", "delete"):
            # Each key is authorized by the handler (oss:DeleteObject on it), once the body is read.
            return Operation("DeleteMultipleObjects", ())
        name = "ListObjects" if action == "oss:ListObjects" else action.removeprefix("oss:")
        arn = bucket_resource(target.bucket, region=config.region, owner=config.owner_account_id)
        return Operation(name, ((action, arn),))
    resource = _object_arn(config, target.bucket, target.key)

    def single(name: str, action: str) -> Operation:
        return Operation(name, ((action, resource),))

    if method in ("GET", "HEAD"):
        if "uploadId" in args:
            return single("ListParts", "oss:ListParts")
        for sub, action in (
            ("acl", "GetObjectAcl"),
            ("tagging", "GetObjectTagging"),
        ):
            if sub in args:
                return single(action, f"oss:{action}")
        if "symlink" in args:  # Alibaba: GetSymlink needs oss:GetObject, it has no action of its own
            return single("GetSymlink", "oss:GetObject")
        return single("HeadObject" if method == "HEAD" else "GetObject", "oss:GetObject")
    if method == "PUT":
        for sub, action in (
            ("acl", "PutObjectAcl"),
            ("tagging", "PutObjectTagging"),
        ):
            if sub in args:
                return single(action, f"oss:{action}")
        if "symlink" in args:
            # Alibaba: PutSymlink needs oss:PutObject (on the link; the target is not checked), so any
            # token that may upload under a prefix may also plant there a link to any key of the bucket.
            return Operation(
                "PutSymlink", (("oss:PutObject", resource), *_acl_and_tagging(request.headers, resource))
            )
        copy = "x-oss-copy-source" in request.headers
        if copy:
            source_bucket, source_key = _copy_source(request)
            read = ("oss:GetObject", _object_arn(config, source_bucket, source_key))
            if "uploadId" in args:
                return Operation("UploadPartCopy", (("oss:PutObject", resource), read))
            return Operation(
                "CopyObject",
                (("oss:PutObject", resource), read, *_acl_and_tagging(request.headers, resource)),
            )
        if "uploadId" in args or "partNumber" in args:
            return single("UploadPart", "oss:PutObject")
        return Operation(
            "PutObject", (("oss:PutObject", resource), *_acl_and_tagging(request.headers, resource))
        )
    if method == "POST":
        if "uploads" in args:
            extra = _acl_and_tagging(request.headers, resource)
            return Operation("InitiateMultipartUpload", (("oss:PutObject", resource), *extra))
        if "uploadId" in args:
            return single("CompleteMultipartUpload", "oss:PutObject")
        if "append" in args:
            return single("AppendObject", "oss:PutObject")
        if "restore" in args:
            return single("RestoreObject", "oss:RestoreObject")
        raise OssError("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)
    if method == "DELETE":
        if "uploadId" in args:
            return single("AbortMultipartUpload", "oss:AbortMultipartUpload")
        if "tagging" in args:
            return single("DeleteObjectTagging", "oss:DeleteObjectTagging")
        return single("DeleteObject", "oss:DeleteObject")
    raise OssError("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)


def _copy_source(request: Request) -> tuple[str, str]:
    """``x-oss-copy-source: /bucket/url-encoded-key`` → (bucket, key)."""
    source = unquote(request.headers.get("x-oss-copy-source", ""))
    bucket, sep, key = source.lstrip("/").partition("/")
    if not sep or not key or not BUCKET_NAME.match(bucket):
        raise OssError("InvalidArgument", "x-oss-copy-source must be /<bucket>/<key>.")
    _validate_key(key)
    return bucket, key


def _refuse_callback(request: Request) -> None:
    if "x-oss-callback" in request.headers or "callback" in request.args:
        raise _not_implemented("Upload callback")


def _part_number(value: str) -> int:
    if not is_decimal(value) or not 1 <= int(value) <= MAX_PART_NUMBER:
        raise OssError("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive.")
    return int(value)


def _bounded_int(value: str | None, name: str, low: int, high: int, default: int) -> int:
    """An integer query parameter; empty means "not given" (oss2 sends ``part-number-marker=``)."""
    if not value:
        return default
    if not is_decimal(value) or not low <= int(value) <= high:
        raise OssError("InvalidArgument", f"{name} must be an integer between {low} and {high}.")
    return int(value)


def _read_small_body(request: Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_XML_BODY:
        raise OssError("MalformedXML", "The XML you provided was too large.")
    data = request.stream.read(MAX_XML_BODY + 1)
    if len(data) > MAX_XML_BODY:
        raise OssError("MalformedXML", "The XML you provided was too large.")
    return data


def _requested_parts(body: bytes, stored: Mapping[int, Any]) -> list[int]:
    """Parse and check CompleteMultipartUpload's part list as OSS does."""
    malformed = OssError(
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema.",
    )
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise malformed  # no DTDs, hence no entity expansion, before the parser sees the body
    try:
        root = ET.fromstring(body)  # noqa: S314 - DTDs refused above; expat >= 2.4 caps amplification
    except ET.ParseError:
        raise malformed from None
    if root.tag != "CompleteMultipartUpload":
        raise malformed
    chosen: list[int] = []
    for part in root.findall("Part"):
        number_text, etag = part.findtext("PartNumber"), part.findtext("ETag")
        if number_text is None or etag is None or not is_decimal(number_text.strip()):
            raise malformed
        number = int(number_text.strip())
        if chosen and number <= chosen[-1]:
            raise OssError(
                "InvalidPartOrder",
                "The list of parts was not in ascending order. Parts list must specified in order by part number.",
            )
        known = stored.get(number)
        if known is None or _etag_value(known.etag) != _etag_value(etag):
            raise OssError(
                "InvalidPart",
                "One or more of the specified parts could not be found or the specified entity tag might not "
                "have matched the part's entity tag.",
                400,
                PartNumber=str(number),
            )
        chosen.append(number)
    return chosen


def _delete_request(body: bytes) -> tuple[bool, list[str]]:
    """``<Delete><Quiet>true</Quiet><Object><Key>k</Key></Object>...</Delete>`` -> (quiet, keys)."""
    malformed = OssError(
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema.",
    )
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise malformed
    try:
        root = ET.fromstring(body)  # noqa: S314 - DTDs refused above
    except ET.ParseError:
        raise malformed from None
    if root.tag != "Delete":
        raise malformed
    keys = [node.findtext("Key") or "" for node in root.findall("Object")]
    if not keys or len(keys) > MAX_DELETE_KEYS or not all(keys):
        raise malformed
    for key in keys:
        _validate_key(key)
    return (root.findtext("Quiet") or "false").strip().lower() == "true", list(dict.fromkeys(keys))


def _key_token(key: str) -> str:
    """ListObjectsV2's opaque continuation token: here, the last key listed."""
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode()


def _token_key(token: str) -> str:
    try:
        return base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
    except (ValueError, UnicodeError):
        raise OssError("InvalidArgument", "The continuation token provided is incorrect.") from None


def _etag_value(etag: str) -> str:
    return etag.strip().strip('"').upper()


# ---------------------------------------------------------------------- small helpers


def _content_type(value: str | None) -> str:
    return value or "application/octet-stream"


def _user_meta(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in items if name.lower().startswith("x-oss-meta-")}


def _form(request: Request) -> tuple[dict[str, str], FileStorage | None]:
    """A PostObject form's fields (lower-case names: OSS reads them case-insensitively) and its file.

    A text field beyond the sandbox's form limit (1 MiB; Alibaba documents 2 MB per value and 8 MB
    before the file, "PostObject" error pages 0006-00000111/112) is a malformed request, not a
    too-large object.
    """
    try:
        fields = {name.lower(): value for name, value in request.form.items()}
        upload = _form_file(request.files.items())
    except RequestEntityTooLarge:
        if request.content_length is not None and request.content_length > _OssRequest.max_content_length:
            raise
        raise OssError(
            "MalformedPOSTRequest", "The body of your POST request is not well-formed multipart/form-data."
        ) from None
    return fields, upload


def _post_content_type(fields: Mapping[str, str], upload: FileStorage) -> str:
    """The stored Content-Type of a form upload: ``x-oss-content-type`` first (Alibaba's "PostObject"
    page: it takes precedence over the type given with the file), then the ``Content-Type`` field,
    then the file part's own type."""
    return _content_type(
        fields.get("x-oss-content-type") or fields.get("content-type") or upload.mimetype or None
    )


def _form_file(items: Iterable[tuple[str, FileStorage]]) -> FileStorage | None:
    for name, storage in items:
        if name.lower() == "file":
            return storage
    return None


def _encoder(request: Request) -> Callable[[str], str]:
    if request.args.get("encoding-type") == "url":
        return lambda text: quote(text, safe="")
    return lambda text: text


def _encoding_element(request: Request) -> list[tuple[str, Any]]:
    return [("EncodingType", "url")] if request.args.get("encoding-type") == "url" else []


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _object_headers(meta: ObjectMeta) -> dict[str, str]:
    headers = {
        "Content-Type": meta.content_type,
        "ETag": meta.etag,
        "Last-Modified": http_date(meta.last_modified),
        "x-oss-hash-crc64ecma": meta.crc64,
        "x-oss-object-type": meta.object_type,
        "x-oss-storage-class": "Standard",
        "Accept-Ranges": "bytes",
    }
    headers.update(meta.headers)
    headers.update(meta.user_meta)
    if meta.tags:
        headers["x-oss-tagging-count"] = str(len(meta.tags))
    return headers


OBJECT_ACLS = ("default", "private", "public-read", "public-read-write")
MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE = 10, 128, 256


def _acl_and_tagging(fields: Mapping[str, str], resource: str) -> tuple[tuple[str, str], ...]:
    """Setting an ACL or tags while writing needs the permission to set them (oss:PutObjectAcl,
    oss:PutObjectTagging), as Alibaba documents for PutObject: they are not side effects of a write.

    ``fields`` is the request's headers, or a PostObject form's fields with lower-case names (the
    same names are form fields there, and a form gets no more than a header-signed request).
    """
    grants = []
    if "x-oss-object-acl" in fields:
        grants.append(("oss:PutObjectAcl", resource))
    if "x-oss-tagging" in fields:
        grants.append(("oss:PutObjectTagging", resource))
    return tuple(grants)


def _object_acl(fields: Mapping[str, str]) -> str | None:
    """``x-oss-object-acl`` of the headers or form fields, checked; None when absent."""
    value = fields.get("x-oss-object-acl")
    if value is None:
        return None
    if value not in OBJECT_ACLS:
        raise OssError(
            "InvalidArgument", "no such object access control exists", ArgumentName="x-oss-object-acl"
        )
    return value


def _tagging(fields: Mapping[str, str]) -> dict[str, str] | None:
    """``x-oss-tagging: k1=v1&k2=v2`` (URL-encoded, a header or a form field), at most 10 tags of
    128/256 characters."""
    value = fields.get("x-oss-tagging")
    if value is None:
        return None
    try:
        pairs = parse_qsl(value, keep_blank_values=True, strict_parsing=bool(value))
    except ValueError:
        raise OssError("InvalidArgument", "The tag provided was not a valid tag.") from None
    tags = dict(pairs)
    if len(tags) != len(pairs) or len(tags) > MAX_TAGS:
        raise OssError("BadRequest", "Object tags cannot be greater than 10 or have duplicate keys.")
    if any(not k or len(k) > MAX_TAG_KEY or len(v) > MAX_TAG_VALUE for k, v in tags.items()):
        raise OssError("InvalidArgument", "The tag provided was not a valid tag.")
    return tags


def _standard_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The standard headers OSS keeps with an object (request headers, or PostObject form fields)."""
    wanted = {name.lower(): name for name in STANDARD_OBJECT_HEADERS}
    return {wanted[name.lower()]: value for name, value in items if name.lower() in wanted}


def _check_preconditions(request: Request, meta: ObjectMeta) -> None:
    """If-Match / If-Unmodified-Since (412 PreconditionFailed), If-None-Match / If-Modified-Since (304),
    evaluated in RFC 7232's order, as OSS does for GetObject and HeadObject."""
    failed = OssError(
        "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.", 412
    )
    if_match = request.headers.get("If-Match")
    last_modified = int(meta.last_modified)
    if if_match is not None:
        if _etag_value(if_match) != _etag_value(meta.etag) and if_match.strip() != "*":
            raise failed
    elif (
        since := _http_time(request.headers.get("If-Unmodified-Since"))
    ) is not None and last_modified > since:
        raise failed
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        if _etag_value(if_none_match) == _etag_value(meta.etag) or if_none_match.strip() == "*":
            raise NotModified(meta)
    elif (
        since := _http_time(request.headers.get("If-Modified-Since"))
    ) is not None and last_modified <= since:
        raise NotModified(meta)


def _http_time(value: str | None) -> int | None:
    parsed = parse_date(value) if value else None
    return int(parsed.timestamp()) if parsed is not None else None


def _read_span(handle: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    try:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(length, 256 * 1024))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()


def _xml(tag: str, children: Iterable[tuple[str, Any]]) -> bytes:
    def build(parent: ET.Element, items: Iterable[tuple[str, Any]]) -> None:
        for name, value in items:
            child = ET.SubElement(parent, name)
            if isinstance(value, list):
                build(child, value)
            else:
                child.text = str(value)

    root = ET.Element(tag)
    build(root, children)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(
        root, encoding="utf-8", xml_declaration=False
    )


def _xml_response(body: bytes, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body, status=status, headers=dict(headers or {}), content_type="application/xml")


def _empty(status: int, headers: Mapping[str, str] | None = None) -> Response:
    response = Response(b"", status=status, headers=dict(headers or {}))
    response.headers.pop("Content-Type", None)  # OSS sends none with an empty answer
    return response


def _drain(request: Request, response: Response) -> None:
    """Consume what is left of a refused upload so the client reads our answer, not a reset.

    The dev server keeps connections alive and does not skip unread bodies itself: a body too
    large to drain closes the connection instead of being parsed as the next request.
    """
    declared = request.content_length
    if declared is None and "chunked" not in request.headers.get("Transfer-Encoding", "").lower():
        return
    if declared is None or declared > DRAIN_LIMIT:
        response.headers["Connection"] = "close"
        return
    try:
        stream = request.stream
        while stream.read(256 * 1024):
            pass
    except (OSError, ValueError, HTTPException):
        response.headers["Connection"] = "close"
