"""CSV exports open as text in any spreadsheet, whichever list separator it reads with.

OWASP's "CSV Injection" page and ASVS 1.2.10: no cell may start with = + - @, tab, carriage return
(or NUL); a separator or a quote inside a value can start a new cell in a reader whose separator is
not ours, so every such place is neutralised, not only the value's first character.
"""

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audit.csv_export import csv_cell, csv_rows
from tests.audit.test_overview import CHANGELIST, row

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")
SEPARATORS = (",", ";", "\t")

# Values made of the pieces an attacker would combine, and any text at all.
PIECES = [
    ",",
    ";",
    "\t",
    "\n",
    "\r",
    "\r\n",
    '"',
    "'",
    " ",
    "=",
    "+",
    "-",
    "@",
    "\0",
    "cmd|' /C calc'!A0",
    "a",
    "1",
]
CELL = st.one_of(st.text(max_size=40), st.lists(st.sampled_from(PIECES), max_size=12).map("".join))
# Numbers are written as they are: a negative one is a number to a spreadsheet, not a formula.
NUMBER = st.one_of(st.integers(min_value=0), st.floats(min_value=0, allow_nan=False, allow_infinity=False))
ROWS = st.lists(st.lists(st.one_of(CELL, st.none(), NUMBER), min_size=1, max_size=5), min_size=1, max_size=4)


def read_back(text: str, delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def formula_cells(text: str) -> list[tuple[str, str]]:
    """(separator, cell) for every cell that starts a formula, read with each separator in turn."""
    return [
        (delimiter, cell)
        for delimiter in SEPARATORS
        for line in read_back(text, delimiter)
        for cell in line
        if cell.lstrip(" ").startswith(FORMULA_STARTS)
    ]


@hypothesis_settings(max_examples=500, deadline=None)
@given(rows=ROWS)
def test_no_cell_starts_a_formula_whatever_the_separator(rows):
    text = "".join(csv_rows(iter(rows)))
    assert formula_cells(text) == []


@hypothesis_settings(max_examples=300, deadline=None)
@given(rows=ROWS)
def test_read_with_our_separator_every_value_comes_back_with_only_quotes_added(rows):
    text = "".join(csv_rows(iter(rows)))
    assert read_back(text, ",") == [[csv_cell(value) for value in r] for r in rows]
    for r in rows:
        for value in r:
            if isinstance(value, str):
                assert csv_cell(value).replace("'", "") == value.replace("'", "")


def test_every_field_is_quoted():
    assert "".join(csv_rows(iter([["a", 1, None]]))) == '"a","1",""\n'


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("avatar;=cmd|' /C calc'!A0", "avatar;'=cmd|' /C calc'!A0"),
        ("=1+2", "'=1+2"),
        ("a,@SUM(1)", "a,'@SUM(1)"),
        ('x"-2', "x\"'-2"),
        ("ok\n+1", "ok\n'+1"),
        ("tab\t=x", "tab\t'=x"),
        ("; =x", ";' =x"),
        ("1-2+3", "1-2+3"),  # in the middle of a cell: nothing to do
        ("plain", "plain"),
    ],
)
def test_neutralised_values(value, written):
    assert csv_cell(value) == written
    assert csv_cell(-5) == "-5" and csv_cell(None) == ""


@pytest.mark.django_db
def test_the_admin_export_of_a_hostile_user_agent_reads_as_text_with_a_semicolon(client):
    """The issue's reproduction, through the admin's real export action."""
    payload = "avatar;=cmd|' /C calc'!A0"
    row("mallory", "issued", timezone.now(), user_agent=payload).save()
    reviewer = get_user_model().objects.create_superuser("root", password="root-password-1234")
    client.force_login(reviewer)

    response = client.post(
        CHANGELIST, {"action": "export_csv", "select_across": "1", "index": "0", "_selected_action": ["1"]}
    )

    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    assert formula_cells(text) == []
    by_semicolon = [cell for line in read_back(text, ";") for cell in line]
    assert any(cell.startswith("'=cmd|' /C calc'!A0") for cell in by_semicolon), by_semicolon
    by_comma = list(csv.DictReader(io.StringIO(text, newline="")))
    assert by_comma[0]["user_agent"] == "avatar;'=cmd|' /C calc'!A0"
