"""A pure RAM policy engine: the one place that parses and evaluates policies.

The sandbox's OSS half and the project's tests both ask this module whether a
request is allowed, so that "role policy ∩ session policy, explicit Deny first"
is implemented exactly once. No I/O, no Django.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache
from typing import Any

__all__ = [
    "Condition",
    "Decision",
    "Policy",
    "PolicyGrammarError",
    "Statement",
    "bucket_resource",
    "is_allowed",
    "object_resource",
    "parse_policy",
]


class PolicyGrammarError(ValueError):
    """The document is not a policy RAM would accept."""


class Decision(Enum):
    """What one policy says about one request."""

    ALLOW = "allow"
    DENY = "deny"
    NOT_APPLICABLE = "not_applicable"


_STRING_OPERATORS = {
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
}
_NUMERIC_OPERATORS = {
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
}
_DATE_OPERATORS = {
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
}
_IP_OPERATORS = {"IpAddress", "NotIpAddress"}
KNOWN_OPERATORS = frozenset(
    _STRING_OPERATORS | _NUMERIC_OPERATORS | _DATE_OPERATORS | _IP_OPERATORS | {"Bool"}
)

_STATEMENT_KEYS = {
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
}
_ACTION_RE = re.compile(r"^(\*|[A-Za-z0-9*?_-]+:[A-Za-z0-9*?_-]+)$")


@dataclass(frozen=True)
class Condition:
    """One `Operator: {Key: [values]}` test; the values are ORed."""

    operator: str
    key: str
    values: tuple[str, ...]

    def holds(self, context: Mapping[str, str]) -> bool:
        """True when the context satisfies this test; a missing key never does."""
        actual = _lookup(context, self.key)
        if actual is None:
            return False
        return _OPERATOR_TESTS[self.operator](actual, self.values)


@dataclass(frozen=True)
class Statement:
    """One statement; exactly one of actions/not_actions and of resources/not_resources is set."""

    effect: str
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    conditions: tuple[Condition, ...]

    def applies(self, action: str, resource: str, context: Mapping[str, str]) -> bool:
        """True when action, resource and every condition match."""
        if self.actions is not None:
            action_ok = any(_action_matches(p, action) for p in self.actions)
        else:
            action_ok = not any(_action_matches(p, action) for p in self.not_actions or ())
        if not action_ok:
            return False
        if self.resources is not None:
            resource_ok = any(_resource_matches(p, resource) for p in self.resources)
        else:
            resource_ok = not any(_resource_matches(p, resource) for p in self.not_resources or ())
        if not resource_ok:
            return False
        return all(c.holds(context) for c in self.conditions)


@dataclass(frozen=True)
class Policy:
    """A parsed, validated policy. `document` is the JSON-ready dict it came from."""

    statements: tuple[Statement, ...]
    document: dict[str, Any]

    def decide(self, action: str, resource: str, context: Mapping[str, str] | None = None) -> Decision:
        """Deny if any matching statement denies, else Allow if one allows."""
        ctx = context or {}
        allowed = False
        for statement in self.statements:
            if statement.applies(action, resource, ctx):
                if statement.effect == "Deny":
                    return Decision.DENY
                allowed = True
        return Decision.ALLOW if allowed else Decision.NOT_APPLICABLE

    def to_json(self) -> str:
        """Compact JSON, e.g. to embed in a token or send to STS."""
        return json.dumps(self.document, separators=(",", ":"), sort_keys=True)


def object_resource(bucket: str, key: str, *, region: str, owner: str) -> str:
    """The RAM resource of an object as OSS builds it for a request: a concrete region and the
    bucket owner's account id, ``acs:oss:<region>:<owner>:<bucket>/<key>``.

    A ``*`` in a policy matches across colons here (the stricter reading for whoever writes a
    policy), so ``acs:oss:*:*:<bucket>/user/7/*`` also matches a key such as
    ``user/8/x:<bucket>/user/7/y``.
    """
    return f"acs:oss:{region}:{owner}:{bucket}/{key}"


def bucket_resource(bucket: str, *, region: str, owner: str) -> str:
    """The RAM resource of a bucket-level action (ListObjects, GetBucketAcl, ...)."""
    return f"acs:oss:{region}:{owner}:{bucket}"


def is_allowed(
    policies: Sequence[Policy],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> bool:
    """Allowed only if every policy allows and none denies.

    Each policy is a boundary (the role's own policy, then the session policy
    given to AssumeRole), so the effective permission is their intersection.
    An empty sequence allows nothing.
    """
    if not policies:
        return False
    decisions = [p.decide(action, resource, context) for p in policies]
    if Decision.DENY in decisions:
        return False
    return all(d is Decision.ALLOW for d in decisions)


def parse_policy(document: str | bytes | Mapping[str, Any]) -> Policy:
    """Validate a policy the way RAM does and return its parsed form."""
    if isinstance(document, str | bytes):
        try:
            raw = json.loads(document)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PolicyGrammarError(f"policy is not valid JSON: {exc}") from None
    else:
        raw = document
    if not isinstance(raw, Mapping):
        raise PolicyGrammarError("policy must be a JSON object")
    unknown = set(raw) - {"Version", "Statement"}
    if unknown:
        raise PolicyGrammarError(f"unknown policy element(s): {', '.join(sorted(unknown))}")
    if raw.get("Version") != "1":
        raise PolicyGrammarError('Version must be the string "1"')
    statements = raw.get("Statement")
    if not isinstance(statements, list) or not statements:
        raise PolicyGrammarError("Statement must be a non-empty list")
    parsed = tuple(_parse_statement(s, i) for i, s in enumerate(statements))
    # Round-trip through JSON so the stored document is plain, detached data.
    return Policy(statements=parsed, document=json.loads(json.dumps(raw)))


def _parse_statement(raw: Any, index: int) -> Statement:
    where = f"Statement[{index}]"
    if not isinstance(raw, Mapping):
        raise PolicyGrammarError(f"{where} must be an object")
    unknown = set(raw) - _STATEMENT_KEYS
    if unknown:
        raise PolicyGrammarError(f"{where}: unknown element(s): {', '.join(sorted(unknown))}")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyGrammarError(f'{where}: Effect must be "Allow" or "Deny"')

    actions, not_actions = _pick_one(raw, "Action", "NotAction", where)
    for action in actions or not_actions or ():
        if not _ACTION_RE.match(action):
            raise PolicyGrammarError(f"{where}: malformed action {action!r}")
    resources, not_resources = _pick_one(raw, "Resource", "NotResource", where)
    for resource in resources or not_resources or ():
        if resource != "*" and not resource.startswith("acs:"):
            raise PolicyGrammarError(f"{where}: malformed resource {resource!r}")

    return Statement(
        effect=effect,
        actions=actions,
        not_actions=not_actions,
        resources=resources,
        not_resources=not_resources,
        conditions=_parse_conditions(raw.get("Condition"), where),
    )


def _pick_one(
    raw: Mapping[str, Any], name: str, not_name: str, where: str
) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    has, has_not = name in raw, not_name in raw
    if has == has_not:
        raise PolicyGrammarError(f"{where}: exactly one of {name} and {not_name} is required")
    key = name if has else not_name
    values = _string_list(raw[key], f"{where}.{key}")
    return (values, None) if has else (None, values)


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise PolicyGrammarError(f"{where} must be a non-empty string or list of strings")
    return tuple(value)


def _parse_conditions(raw: Any, where: str) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or not raw:
        raise PolicyGrammarError(f"{where}.Condition must be a non-empty object")
    conditions = []
    for operator, block in raw.items():
        if operator not in KNOWN_OPERATORS:
            raise PolicyGrammarError(f"{where}: unknown condition operator {operator!r}")
        if not isinstance(block, Mapping) or not block:
            raise PolicyGrammarError(f"{where}.Condition.{operator} must be a non-empty object")
        for key, values in block.items():
            normalized = _condition_values(values, f"{where}.Condition.{operator}.{key}")
            for value in normalized:
                _check_operand(operator, value, f"{where}.Condition.{operator}.{key}")
            conditions.append(Condition(operator=operator, key=key, values=normalized))
    return tuple(conditions)


def _condition_values(values: Any, where: str) -> tuple[str, ...]:
    if not isinstance(values, list):
        values = [values]
    if not values:
        raise PolicyGrammarError(f"{where} must not be empty")
    out = []
    for value in values:
        if isinstance(value, bool):
            out.append("true" if value else "false")
        elif isinstance(value, str | int | float):
            out.append(str(value))
        else:
            raise PolicyGrammarError(f"{where}: values must be strings, numbers or booleans")
    return tuple(out)


def _check_operand(operator: str, value: str, where: str) -> None:
    try:
        if operator in _IP_OPERATORS:
            ipaddress.ip_network(value, strict=False)
        elif operator in _DATE_OPERATORS:
            _parse_date(value)
        elif operator in _NUMERIC_OPERATORS:
            float(value)
        elif operator == "Bool" and value.lower() not in ("true", "false"):
            raise ValueError(value)
    except ValueError:
        raise PolicyGrammarError(f"{where}: {value!r} is not a valid {operator} operand") from None


# --- matching ---------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _action_matches(pattern: str, action: str) -> bool:
    return _wildcard(pattern, True).fullmatch(action) is not None


def _resource_matches(pattern: str, resource: str) -> bool:
    return _wildcard(pattern, False).fullmatch(resource) is not None


def _lookup(context: Mapping[str, str], key: str) -> str | None:
    """Condition keys are case-insensitive, as in RAM."""
    if key in context:
        return context[key]
    lowered = key.lower()
    for name, value in context.items():
        if name.lower() == lowered:
            return value
    return None


def _parse_date(value: str) -> datetime:
    if value.isascii() and value.isdigit():  # "²".isdigit() is True
        return datetime.fromtimestamp(int(value), tz=UTC)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ip_in(actual: str, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(actual)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)


def _compare(convert: Any, test: Any, *, negate: bool = False) -> Any:
    """Build "some listed value satisfies test(actual, value)" (or "none does").

    Unparseable input fails the condition either way: a malformed date or
    number must never grant access through a negated operator.
    """

    def check(actual: str, values: tuple[str, ...]) -> bool:
        try:
            left = convert(actual)
            hit = any(test(left, convert(v)) for v in values)
        except ValueError:
            return False
        return not hit if negate else hit

    return check


def _equal(a: Any, b: Any) -> bool:
    return a == b


def _string_like(actual: str, values: tuple[str, ...]) -> bool:
    return any(_wildcard(v, False).fullmatch(actual) for v in values)


_OPERATOR_TESTS: dict[str, Any] = {
    "StringEquals": _compare(str, _equal),
    "StringNotEquals": _compare(str, _equal, negate=True),
    "StringEqualsIgnoreCase": _compare(str.lower, _equal),
    "StringNotEqualsIgnoreCase": _compare(str.lower, _equal, negate=True),
    "StringLike": _string_like,
    "StringNotLike": lambda actual, values: not _string_like(actual, values),
    "NumericEquals": _compare(float, _equal),
    "NumericNotEquals": _compare(float, _equal, negate=True),
    "NumericLessThan": _compare(float, lambda a, b: a < b),
    "NumericLessThanEquals": _compare(float, lambda a, b: a <= b),
    "NumericGreaterThan": _compare(float, lambda a, b: a > b),
    "NumericGreaterThanEquals": _compare(float, lambda a, b: a >= b),
    "DateEquals": _compare(_parse_date, _equal),
    "DateNotEquals": _compare(_parse_date, _equal, negate=True),
    "DateLessThan": _compare(_parse_date, lambda a, b: a < b),
    "DateLessThanEquals": _compare(_parse_date, lambda a, b: a <= b),
    "DateGreaterThan": _compare(_parse_date, lambda a, b: a > b),
    "DateGreaterThanEquals": _compare(_parse_date, lambda a, b: a >= b),
    "Bool": _compare(str.lower, _equal),
    "IpAddress": _ip_in,
    "NotIpAddress": lambda actual, values: _valid_ip(actual) and not _ip_in(actual, values),
}


def _valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
