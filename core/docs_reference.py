"""The documentation's reference pages that are written from the code, so they cannot drift from it.

``docs/reference/errors.md`` comes from ``core.schema.ERROR_CODES`` (the one list of the API's codes) and
``docs/reference/checks.md`` from the system checks registered by our own apps: each check function's
source is read (``inspect`` + ``ast``), and every ``Error(...)``/``Warning(...)`` it can return is listed
with its id, message and hint as written there (``{name}`` where the message includes a value).
``python manage.py docs_reference`` writes them; ``--check`` (also a test) fails while one is stale.
"""

import ast
import inspect
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.checks import Tags
from django.core.checks.registry import registry

from core.health import READINESS_TAG
from core.schema import ERROR_CODES

GENERATED = (
    "<!-- Written by `python manage.py docs_reference` from the code: edit the code, not this page. -->"
)
LEVELS = {"Critical": "critical", "Error": "error", "Warning": "warning", "Info": "info"}


@dataclass(frozen=True)
class CheckMessage:
    id: str
    level: str  # "error", "warning", ...
    message: str  # as written, with {name} where a value goes
    hint: str
    function: str  # module.function that returns it
    deploy_only: bool  # only with `check --deploy`
    readiness: bool  # /readyz fails while it is an error
    database: bool  # reads the database: only with `check --database default` (and migrate)


def markdown_text(text: str) -> str:
    """Plain text safe inside a Markdown paragraph or table cell: no HTML, no emphasis, no pipes."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for special in ("\\", "`", "*", "_", "[", "]", "|"):
        text = text.replace(special, "\\" + special)
    return text


def _text(node: ast.expr | None, bindings: dict[str, object]) -> str:
    """A message or hint as the source writes it: a value as ``{name}``, or as the constant the name is
    bound to (a module constant, or a literal row of the loop around the call), a computed one as ``…``."""
    if node is None:
        return ""
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(part, bindings) for part in node.values)
    if isinstance(node, ast.FormattedValue):
        return _text(node.value, bindings)
    if isinstance(node, ast.Name):
        value = bindings.get(node.id)
        return str(value) if isinstance(value, str | int) else "{" + node.id + "}"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _text(node.left, bindings) + _text(node.right, bindings)
    return "…"  # a computed value (a list of names, a length): the page shows where it goes


def _loop_bindings(loop: ast.For) -> list[dict[str, object]]:
    """``for name, check_id in (("A", "x.E010"), ("B", "x.E011")):`` → one binding per literal row."""
    if not isinstance(loop.target, ast.Tuple) or not isinstance(loop.iter, ast.Tuple | ast.List):
        return []
    names = [target.id for target in loop.target.elts if isinstance(target, ast.Name)]
    rows = []
    for row in loop.iter.elts:
        if isinstance(row, ast.Tuple) and all(isinstance(value, ast.Constant) for value in row.elts):
            rows.append(dict(zip(names, [value.value for value in row.elts], strict=False)))  # type: ignore[attr-defined]
    return rows


def _messages(node: ast.AST, bindings: dict[str, object]) -> Iterator[tuple[str, ast.Call, dict]]:
    if isinstance(node, ast.For):
        for row in _loop_bindings(node):
            for child in node.body:
                yield from _messages(child, {**bindings, **row})
        return
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in LEVELS:
        yield LEVELS[node.func.id], node, bindings
    for child in ast.iter_child_nodes(node):
        yield from _messages(child, bindings)


def _check_and_its_helpers(check: Callable) -> list[Callable]:
    """The check, and the functions of its own module it calls (directly or through each other)."""
    found, pending = [check], [check]
    while pending:
        tree = ast.parse(textwrap.dedent(inspect.getsource(pending.pop())))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                helper = check.__globals__.get(node.func.id)
                if (
                    inspect.isfunction(helper)
                    and helper.__module__ == check.__module__
                    and helper not in found
                ):
                    found.append(helper)
                    pending.append(helper)
    return found


def registered_check_messages() -> list[CheckMessage]:
    """Every message our own registered checks can return, sorted by id."""
    base = Path(settings.BASE_DIR).resolve()
    deployment = set(registry.deployment_checks)
    found: dict[str, CheckMessage] = {}
    for check in registry.get_checks(include_deployment_checks=True):
        source_file = Path(inspect.getsourcefile(check) or "").resolve()
        if not source_file.is_relative_to(base) or ".venv" in source_file.parts:
            continue
        constants = {name: value for name, value in check.__globals__.items() if name.isupper()}
        for level, call, bindings in (
            found_message
            for function in _check_and_its_helpers(check)
            for found_message in _messages(ast.parse(textwrap.dedent(inspect.getsource(function))), constants)
        ):
            arguments = {keyword.arg: keyword.value for keyword in call.keywords}
            message = call.args[0] if call.args else arguments.get("msg")
            check_id = _text(arguments.get("id"), bindings)
            found[check_id] = CheckMessage(
                id=check_id,
                level=level,
                message=_text(message, bindings),
                hint=_text(arguments.get("hint"), bindings),
                function=f"{check.__module__}.{check.__name__}",
                deploy_only=check in deployment,
                readiness=READINESS_TAG in getattr(check, "tags", ()),
                database=Tags.database in getattr(check, "tags", ()),
            )
    return sorted(found.values(), key=lambda message: message.id)


def errors_page() -> str:
    lines = [
        GENERATED,
        "",
        "# Error codes",
        "",
        'Every error the API answers is JSON `{"detail": "...", "code": "..."}`; `detail` is a sentence for',
        "people (in the request's language), `code` never changes, so clients switch on it. Validation errors",
        "add `errors`, a message per field. The stock-format endpoints (`GET /api/uploads/sts-server/` and",
        "credential URLs) carry the same codes as `ErrorCode`, with the status in `StatusCode`. Which codes",
        "each operation can answer is in the live OpenAPI schema ([the API](../api.md)).",
        "",
        "| HTTP status | code | when |",
        "|---|---|---|",
    ]
    for code, (status, when) in sorted(ERROR_CODES.items(), key=lambda item: item[1][0]):
        lines.append(f"| {status} | `{code}` | {when} |")
    return "\n".join(lines) + "\n"


def checks_page() -> str:
    lines = [
        GENERATED,
        "",
        "# System checks",
        "",
        "Django runs these at start-up (`runserver`, `migrate`, gunicorn's workers) and with",
        "`python manage.py check`; `make check-deploy` runs them with `--deploy --database default`. An error",
        "stops the start; the ones marked *readiness* also make `GET /readyz` answer 503 while they fail.",
        "The message and hint are quoted from the code (`{name}` is where the message includes a value).",
        "",
    ]
    for message in registered_check_messages():
        when = ["only with `check --deploy`" if message.deploy_only else "every start"]
        if message.database:
            when.append("with the database (`migrate`, `check --database default`)")
        if message.readiness:
            when.append("readiness")
        lines += [
            f"## {message.id}",
            "",
            f"**{message.level}** ({', '.join(when)}; `{message.function}`)",
            "",
            markdown_text(message.message),
            "",
        ]
        if message.hint:
            lines += [f"*Hint:* {markdown_text(message.hint)}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def reference_pages() -> dict[Path, str]:
    """Path under the project → the page's text."""
    folder = Path(settings.BASE_DIR) / "docs" / "reference"
    return {folder / "errors.md": errors_page(), folder / "checks.md": checks_page()}
