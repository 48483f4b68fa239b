"""The bucket's CORS, lifecycle and ACL: stored as applied, CORS and a public-read ACL enforced like OSS.

`PutBucketCors` / `GetBucketCors` / `DeleteBucketCors` and `PutBucketLifecycle` /
`GetBucketLifecycle` / `DeleteBucketLifecycle` (`?cors`, `?lifecycle` on the bucket) keep their XML
in `<SANDBOX_DATA_DIR>/bucket-config/<bucket>.json`, so they survive restarts.

CORS, as OSS applies it: a preflight (`OPTIONS`) is answered 200 only when one rule allows the
`Origin`, the `Access-Control-Request-Method` and every `Access-Control-Request-Headers` name
(`*` is a wildcard in origins and headers); otherwise 403 `AccessForbidden`. An actual request from
an allowed origin and method gets `Access-Control-Allow-Origin` and the rule's
`Access-Control-Expose-Headers`; any other gets no CORS header, so the browser hides the answer.
While no rule was applied, one stand-in rule allows the origins of `SANDBOX_CORS_ALLOWED_ORIGINS`
(`*`: any) with every method and header. Lifecycle rules are stored and returned, not executed.
`PutBucketAcl` (`x-oss-acl`) makes the bucket `public-read`: unsigned GET and HEAD are then answered.
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from sandbox.errors import OssError

__all__ = [
    "OPERATIONS",
    "BucketSettings",
    "CorsRule",
    "actual_cors_headers",
    "handle_bucket_config",
    "preflight_headers",
]

CORS_METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")
DEFAULT_EXPOSE = ("ETag", "x-oss-request-id", "x-oss-hash-crc64ecma")
DEFAULT_MAX_AGE = 3600
MAX_CORS_RULES = 20
MAX_LIFECYCLE_RULES = 1000
MAX_BODY = 64 * 1024
OPERATIONS = frozenset(
    {f"{verb}Bucket{what}" for verb in ("Put", "Get", "Delete") for what in ("Cors", "Lifecycle")}
    | {"PutBucketAcl", "GetBucketAcl"}
)
ACLS = ("private", "public-read", "public-read-write")
FORBIDDEN = (
    "CORSResponse: This CORS request is not allowed. This is usually because the evalution of "
    "Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers "
    "are not whitelisted by the resource's CORS spec."
)


@dataclass(frozen=True)
class CorsRule:
    """One `<CORSRule>`."""

    allowed_origins: tuple[str, ...]
    allowed_methods: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_seconds: int | None = None

    def allows(self, origin: str, method: str, headers: list[str] | None = None) -> bool:
        """Origin and method (and, for a preflight, every requested header) are allowed."""
        if method.upper() not in self.allowed_methods:
            return False
        if not any(_wildcard(pattern, origin, ignore_case=False) for pattern in self.allowed_origins):
            return False
        return all(
            any(_wildcard(pattern, name, ignore_case=True) for pattern in self.allowed_headers)
            for name in headers or []
        )


def _wildcard(pattern: str, value: str, *, ignore_case: bool) -> bool:
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"
    return re.match(regex, value, re.IGNORECASE if ignore_case else 0) is not None


class BucketSettings:
    """The applied CORS rules and lifecycle XML of one bucket, persisted as JSON."""

    def __init__(self, data_dir: Path, bucket: str) -> None:
        self.path = Path(data_dir) / "bucket-config" / f"{bucket}.json"
        self._lock = threading.Lock()
        try:
            self._state: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self._state = {"cors": None, "lifecycle": None, "acl": "private"}

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}")
        temporary.write_text(json.dumps(self._state, indent=1), encoding="utf-8")
        os.replace(temporary, self.path)

    def cors(self) -> list[CorsRule] | None:
        """The applied rules, or None when the bucket has no CORS configuration."""
        with self._lock:
            raw = self._state.get("cors")
        if raw is None:
            return None
        return [
            CorsRule(**{k: tuple(v) if isinstance(v, list) else v for k, v in rule.items()}) for rule in raw
        ]

    def set_cors(self, rules: list[CorsRule] | None) -> None:
        with self._lock:
            self._state["cors"] = None if rules is None else [asdict(rule) for rule in rules]
            self._save()

    def acl(self) -> str:
        with self._lock:
            return self._state.get("acl") or "private"

    def set_acl(self, acl: str) -> None:
        with self._lock:
            self._state["acl"] = acl
            self._save()

    def lifecycle(self) -> list[Any] | None:
        with self._lock:
            return self._state.get("lifecycle")

    def set_lifecycle(self, rules: list[Any] | None) -> None:
        with self._lock:
            self._state["lifecycle"] = rules
            self._save()


def rules_in_force(config: Any) -> list[CorsRule]:
    """The applied rules, or the stand-in rule built from `cors_allowed_origins`."""
    applied = config.bucket_settings.cors()
    if applied is not None:
        return applied
    origins = tuple(config.cors_allowed_origins or ())
    if not origins:
        return []
    return [CorsRule(origins, CORS_METHODS, ("*",), DEFAULT_EXPOSE, DEFAULT_MAX_AGE)]


def anonymous_read_allowed(config: Any, method: str) -> bool:
    """A public-read (or public-read-write) bucket answers unsigned GET and HEAD, as OSS does."""
    return method in ("GET", "HEAD") and config.bucket_settings.acl() in ("public-read", "public-read-write")


def _header_names(value: str | None) -> list[str]:
    return [name.strip().lower() for name in (value or "").split(",") if name.strip()]


def preflight_headers(config: Any, request: Request) -> dict[str, str]:
    """The headers of a 200 preflight answer; raises 403 `AccessForbidden` when no rule allows it."""
    origin = request.headers.get("Origin")
    method = request.headers.get("Access-Control-Request-Method", "")
    requested = request.headers.get("Access-Control-Request-Headers")
    if origin and method:
        for rule in rules_in_force(config):
            if rule.allows(origin, method, _header_names(requested)):
                headers = {
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": ", ".join(rule.allowed_methods),
                    "Vary": "Origin",
                }
                if requested:
                    headers["Access-Control-Allow-Headers"] = requested
                if rule.expose_headers:
                    headers["Access-Control-Expose-Headers"] = ", ".join(rule.expose_headers)
                if rule.max_age_seconds is not None:
                    headers["Access-Control-Max-Age"] = str(rule.max_age_seconds)
                return headers
    raise OssError("AccessForbidden", FORBIDDEN, 403)


def actual_cors_headers(config: Any, request: Request) -> dict[str, str]:
    """CORS headers for a non-preflight answer: only when a rule allows its origin and method."""
    origin = request.headers.get("Origin")
    if not origin:
        return {}
    for rule in rules_in_force(config):
        if rule.allows(origin, request.method):
            headers = {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": ", ".join(rule.allowed_methods),
            }
            if rule.expose_headers:
                headers["Access-Control-Expose-Headers"] = ", ".join(rule.expose_headers)
            if rule.max_age_seconds is not None:
                headers["Access-Control-Max-Age"] = str(rule.max_age_seconds)
            return headers
    return {}


# --- the API ---------------------------------------------------------------------------------


def handle_bucket_config(config: Any, operation: str, request: Request) -> Response:
    """Answer an authorized Put/Get/DeleteBucket{Cors,Lifecycle} for the configured bucket."""
    settings: BucketSettings = config.bucket_settings
    if operation == "PutBucketAcl":
        acl = request.headers.get("x-oss-acl", "")
        if acl not in ACLS:
            raise OssError("InvalidArgument", f"x-oss-acl must be one of {', '.join(ACLS)}.")
        settings.set_acl(acl)
        return _empty(200)
    if operation == "GetBucketAcl":
        owner = config.ram.account_id
        return _xml_response(
            _tree_xml(
                "AccessControlPolicy",
                [
                    ("Owner", [("ID", owner), ("DisplayName", owner)]),
                    ("AccessControlList", [("Grant", settings.acl())]),
                ],
            )
        )
    if operation == "PutBucketCors":
        settings.set_cors(_parse_cors(_body(request)))
        return _empty(200)
    if operation == "GetBucketCors":
        rules = settings.cors()
        if rules is None:
            raise OssError("NoSuchCORSConfiguration", "The CORS configuration does not exist.", 404)
        return _xml_response(_cors_xml(rules))
    if operation == "DeleteBucketCors":
        settings.set_cors(None)
        return _empty(204)
    if operation == "PutBucketLifecycle":
        settings.set_lifecycle(_parse_lifecycle(_body(request)))
        return _empty(200)
    if operation == "GetBucketLifecycle":
        rules = settings.lifecycle()
        if rules is None:
            raise OssError("NoSuchLifecycle", "No Row found in Lifecycle Table.", 404)
        return _xml_response(_tree_xml("LifecycleConfiguration", [("Rule", rule) for rule in rules]))
    settings.set_lifecycle(None)
    return _empty(204)


def _malformed() -> OssError:
    return OssError(
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema.",
    )


def _body(request: Request) -> ET.Element:
    data = request.stream.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise _malformed()
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise _malformed()
    try:
        return ET.fromstring(data)  # noqa: S314 - DTDs refused above
    except ET.ParseError:
        raise _malformed() from None


def _texts(element: ET.Element, tag: str) -> tuple[str, ...]:
    return tuple((child.text or "").strip() for child in element.findall(tag))


def _parse_cors(root: ET.Element) -> list[CorsRule]:
    if root.tag != "CORSConfiguration":
        raise _malformed()
    rules = []
    for element in root.findall("CORSRule"):
        origins, methods = _texts(element, "AllowedOrigin"), _texts(element, "AllowedMethod")
        if not origins or not methods:
            raise OssError("InvalidArgument", "A CORS rule needs AllowedOrigin and AllowedMethod.")
        if any(m not in CORS_METHODS for m in methods):
            raise OssError("InvalidArgument", f"AllowedMethod must be one of {', '.join(CORS_METHODS)}.")
        headers = _texts(element, "AllowedHeader")
        if any(o.count("*") > 1 for o in origins) or any(h.count("*") > 1 for h in headers):
            raise OssError("InvalidArgument", "At most one wildcard '*' in an origin or header.")
        max_age = element.findtext("MaxAgeSeconds")
        if max_age is not None and not max_age.strip().isdigit():
            raise OssError("InvalidArgument", "MaxAgeSeconds must be a non-negative integer.")
        rules.append(
            CorsRule(
                origins,
                methods,
                headers,
                _texts(element, "ExposeHeader"),
                int(max_age) if max_age is not None else None,
            )
        )
    if not rules or len(rules) > MAX_CORS_RULES:
        raise OssError("InvalidArgument", f"A bucket has 1 to {MAX_CORS_RULES} CORS rules.")
    return rules


def _cors_xml(rules: list[CorsRule]) -> bytes:
    items: list[tuple[str, Any]] = []
    for rule in rules:
        children: list[tuple[str, Any]] = [("AllowedOrigin", o) for o in rule.allowed_origins]
        children += [("AllowedMethod", m) for m in rule.allowed_methods]
        children += [("AllowedHeader", h) for h in rule.allowed_headers]
        children += [("ExposeHeader", h) for h in rule.expose_headers]
        if rule.max_age_seconds is not None:
            children.append(("MaxAgeSeconds", str(rule.max_age_seconds)))
        items.append(("CORSRule", children))
    items.append(("ResponseVary", "false"))
    return _tree_xml("CORSConfiguration", items)


def _tree(element: ET.Element) -> Any:
    """An element as [[tag, text-or-children], ...], keeping order, for JSON and back."""
    children = list(element)
    if not children:
        return (element.text or "").strip()
    return [[child.tag, _tree(child)] for child in children]


def _parse_lifecycle(root: ET.Element) -> list[Any]:
    if root.tag != "LifecycleConfiguration":
        raise _malformed()
    rules = [_tree(rule) for rule in root.findall("Rule")]
    if not rules or len(rules) > MAX_LIFECYCLE_RULES:
        raise OssError("InvalidArgument", f"A bucket has 1 to {MAX_LIFECYCLE_RULES} lifecycle rules.")
    for rule in rules:
        fields = dict(rule) if isinstance(rule, list) else {}
        if fields.get("Status") not in ("Enabled", "Disabled") or (
            "Prefix" not in fields and "Filter" not in fields
        ):
            raise _malformed()
        actions = {"Expiration", "AbortMultipartUpload", "Transition", "NoncurrentVersionExpiration"}
        if not actions & set(fields):
            raise OssError("InvalidArgument", "A lifecycle rule needs at least one action.")
        for action in ("Expiration", "AbortMultipartUpload"):
            days = (
                dict(fields.get(action) or []).get("Days") if isinstance(fields.get(action), list) else None
            )
            if days is not None and (not days.isdigit() or int(days) < 1):
                raise OssError("InvalidArgument", f"{action} Days must be a positive integer.")
    return rules


def _tree_xml(tag: str, items: list[tuple[str, Any]]) -> bytes:
    def build(parent: ET.Element, children: Any) -> None:
        for name, value in children:
            child = ET.SubElement(parent, name)
            if isinstance(value, list):
                build(child, value)
            else:
                child.text = str(value)

    root = ET.Element(tag)
    build(root, items)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")


def _xml_response(body: bytes) -> Response:
    return Response(body, status=200, content_type="application/xml")


def _empty(status: int) -> Response:
    response = Response(b"", status=status)
    response.headers.pop("Content-Type", None)
    return response
