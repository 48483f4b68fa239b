"""The commands the documentation shows, and where each one is run.

Every fenced ``sh``/``bash``/``shell`` block of README.md and docs/**/*.md is a list of commands (a
command is a logical line: backslash continuations joined, comments dropped). Each command is either

- in a block marked ``<!-- docs-test: run -->`` on the line before its fence: tests/docs/test_live.py
  runs the page's marked blocks, in order, exactly as written, against ``make run`` on free ports (a
  marked ``python`` block runs with the venv's Python in the same folder); or
- a key of ``ELSEWHERE``, whose value names what runs it: ``path::test_function`` (the test must exist),
  or ``.ci/run`` (the exact command must be in that file).

A Chinese page (``<page>.zh.md``) must show exactly the commands of its English page.
"""

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_MARKER = "<!-- docs-test: run -->"
SHELL = {"sh", "bash", "shell", "console"}
LIVE = "tests/docs/test_live.py"

ELSEWHERE: dict[str, str] = {
    # Getting started
    "make run": f"{LIVE}::test_the_pages_run_as_written",  # it starts `make run` for the tours
    "make test": ".ci/run",
    # the same `make run`, its three port variables set to free ports
    "PORT=8010 ALIYUN_STS_ENDPOINT=127.0.0.1:8711 ALIYUN_OSS_ENDPOINT=http://127.0.0.1:8712 make run": (
        f"{LIVE}::test_the_pages_run_as_written"
    ),
    "DJANGO_DEBUG=1 .venv/bin/python manage.py createsuperuser": f"{LIVE}::test_the_pages_run_as_written",
    "make docs": ".ci/run",
    "make docs-serve": f"{LIVE}::test_long_running_commands_start",
    # Operating it
    "make serve": f"{LIVE}::test_long_running_commands_start",
    "python manage.py aliyun_setup": "tests/operators/test_aliyun_setup.py::test_prints_the_documents_for_the_current_settings",
    "ALIYUN_ADMIN_ACCESS_KEY_ID=… ALIYUN_ADMIN_ACCESS_KEY_SECRET=… python manage.py aliyun_setup --apply": (
        "tests/operators/test_aliyun_setup.py::test_apply_then_nothing_to_change"
    ),
    "python manage.py aliyun_doctor": "tests/operators/test_aliyun_doctor.py::test_all_green_after_setup_and_the_probe_leaves_nothing",
    "make run-keyless": f"{LIVE}::test_long_running_commands_start",
    "make aliyun-setup": "tests/operators/test_newcomer_commands.py::test_the_docs_sandbox_operator_commands_work_as_written",
    'make aliyun-setup ARGS="--apply --yes"': (
        "tests/operators/test_newcomer_commands.py::test_the_docs_sandbox_operator_commands_work_as_written"
    ),
    "make doctor": "tests/operators/test_newcomer_commands.py::test_the_docs_sandbox_operator_commands_work_as_written",
    "make trial": "tests/test_trial.py::test_make_trial_serves_the_production_path_with_a_clean_check_deploy",
    # The sandbox
    "make sandbox": f"{LIVE}::test_long_running_commands_start",
    'make sandbox SANDBOX_ARGS="--latency-ms 20 --throttle-every 10 --fail-every 50"': (
        f"{LIVE}::test_long_running_commands_start"
    ),
    'make sandbox SANDBOX_ARGS="--sts-max-calls-per-second 100 --sts-tls-port 8703"': (
        f"{LIVE}::test_long_running_commands_start"
    ),
}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    run: bool  # marked to be run as written

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def english(path: Path) -> bool:
    return not path.name.endswith(".zh.md")


def blocks(path: Path) -> list[Block]:
    found = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        fence = re.match(r"^(`{3,})\s*([\w-]*)", lines[index])
        if not fence:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith(fence.group(1)))
        marked = index > 0 and lines[index - 1].strip() == RUN_MARKER
        text = "\n".join(lines[index + 1 : end]) + "\n"
        found.append(Block(path, index + 1, fence.group(2).lower(), text, marked))
        index = end + 1
    return found


def without_comment(line: str) -> str:
    """The line up to a ``#`` that starts a comment (outside quotes, at the start or after a blank)."""
    quote = None
    for position, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (position == 0 or line[position - 1] in " \t"):
            return line[:position]
    return line


def commands(block: Block) -> list[str]:
    """Logical lines without comments, blanks collapsed; empty ones dropped."""
    logical, pending = [], ""
    for raw in block.text.splitlines():
        line = without_comment(raw).rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    return [" ".join(line.split()) for line in logical if line.strip()]
