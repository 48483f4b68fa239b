"""Every command the documentation shows is run by a test or a CI step (tests/docs/commands.py says how)."""

import ast
import re

import pytest
from django.core.management import call_command

from .commands import ELSEWHERE, ROOT, SHELL, blocks, commands, doc_files, english


def test_every_command_shown_is_run_by_a_test_or_ci():
    unrun = []
    for path in filter(english, doc_files()):
        for block in blocks(path):
            if block.language in SHELL and not block.run:
                unrun += [
                    f"{block.where}: {command}" for command in commands(block) if command not in ELSEWHERE
                ]
    assert unrun == [], (
        "Commands no test or CI step runs: mark their block <!-- docs-test: run --> (tests/docs/test_live.py "
        "runs it as written) or add them to ELSEWHERE in tests/docs/commands.py:\n" + "\n".join(unrun)
    )


def test_every_runner_named_exists_and_every_entry_is_still_shown():
    shown = {
        command
        for path in filter(english, doc_files())
        for block in blocks(path)
        if block.language in SHELL
        for command in commands(block)
    }
    problems = [f"not in the docs any more: {command}" for command in ELSEWHERE if command not in shown]
    for command, runner in ELSEWHERE.items():
        if "::" in runner:
            file, function = runner.split("::")
            source = ROOT / file
            names = (
                {
                    node.name
                    for node in ast.walk(ast.parse(source.read_text()))
                    if isinstance(node, ast.FunctionDef)
                }
                if source.exists()
                else set()
            )
            if function not in names:
                problems.append(f"{command}: no test {runner}")
        else:
            steps = {" ".join(line.split()) for line in (ROOT / runner).read_text().splitlines()}
            if command not in steps:
                problems.append(f"{command}: not a line of {runner}")
    assert problems == []


def test_marked_blocks_are_shell_or_python():
    odd = [
        block.where
        for path in doc_files()
        for block in blocks(path)
        if block.run and block.language not in SHELL | {"python"}
    ]
    assert odd == []


@pytest.mark.parametrize("chinese", sorted((ROOT / "docs").rglob("*.zh.md")), ids=lambda path: path.name)
def test_a_chinese_page_shows_the_same_commands_as_its_english_one(chinese):
    english_page = chinese.with_name(chinese.name.replace(".zh.md", ".md"))
    assert english_page.exists()

    def shown(path):
        return [
            (block.language, commands(block))
            for block in blocks(path)
            if block.language in SHELL | {"python"}
        ]

    assert shown(chinese) == shown(english_page)


def test_the_readmes_links_lead_to_files():
    text = (ROOT / "README.md").read_text()
    targets = [target.split("#")[0] for target in re.findall(r"\]\(([^)\s]+)\)", text)]
    missing = [target for target in targets if "://" not in target and not (ROOT / target).exists()]
    assert missing == []


def test_the_reference_pages_written_from_the_code_are_current():
    call_command("docs_reference", "--check")


def test_the_checks_page_names_every_check_id_in_the_code():
    page = (ROOT / "docs" / "reference" / "checks.md").read_text()
    ids = {
        check_id
        for source in ROOT.glob("*/checks.py")
        for check_id in re.findall(r"\"([a-z_]+\.[CEWI]\d{3})\"", source.read_text())
    }
    assert ids
    assert sorted(check_id for check_id in ids if f"## {check_id}\n" not in page) == []
