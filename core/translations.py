"""Our message catalogs without GNU gettext: extraction and checking with Babel (pinned in requirements.txt).

Django's ``makemessages`` needs ``xgettext``, which a fresh machine does not have. This module finds the same
messages: Python sources through Babel's extractor, templates through Django's own ``templatize`` (the
pseudo-Python that ``makemessages`` feeds to xgettext), and our JavaScript through Babel's JS extractor.
``python manage.py translations`` writes them into ``locale/<lang>/LC_MESSAGES/{django,djangojs}.po``;
``make install`` compiles those to ``.mo`` with ``pybabel compile``.
"""

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract
from babel.messages.pofile import read_po, write_po
from django.conf import settings
from django.utils.translation.template import templatize

# What the product translates (the sandbox stands in for Alibaba Cloud, whose messages are English).
PYTHON_PACKAGES = (
    "config",
    "core",
    "aliyun",
    "accounts",
    "ledger",
    "uploads",
    "operators",
    "avatars",
    "audit",
)
TEMPLATE_DIR = "templates"
JAVASCRIPT_DIR = "static/js"
DOMAINS = ("django", "djangojs")

PYTHON_KEYWORDS = {
    "gettext": None,
    "gettext_lazy": None,
    "gettext_noop": None,
    "_": None,
    "ngettext": (1, 2),
    "ngettext_lazy": (1, 2),
    "pgettext": ((1, "c"), 2),
    "pgettext_lazy": ((1, "c"), 2),
    "npgettext": ((1, "c"), 2, 3),
    "npgettext_lazy": ((1, "c"), 2, 3),
}
# `say(text, values)` is our JS shorthand for interpolate(gettext(text), values, true).
JAVASCRIPT_KEYWORDS = {"gettext": None, "say": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}


@dataclass(frozen=True)
class Message:
    """One translatable text: ``id`` is a str, or a (singular, plural) tuple; ``where`` is (path, line)."""

    id: str | tuple[str, str]
    context: str | None
    where: tuple[str, int]


def _python_files(base: Path) -> Iterator[Path]:
    for package in PYTHON_PACKAGES:
        for path in sorted((base / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _from_python_source(text: str, keywords: dict, method: str, relative: str) -> Iterator[Message]:
    for lineno, message, _comments, context in extract(method, io.BytesIO(text.encode()), keywords=keywords):
        yield Message(id=message, context=context, where=(relative, lineno))


def messages_extract(*, domain: str, base: Path | None = None) -> list[Message]:
    """Every message of ``domain`` ("django": Python and templates; "djangojs": static/js), in file order."""
    base = base or Path(settings.BASE_DIR)
    found: list[Message] = []
    if domain == "django":
        for path in _python_files(base):
            found += _from_python_source(
                path.read_text(), PYTHON_KEYWORDS, "python", str(path.relative_to(base))
            )
        for path in sorted((base / TEMPLATE_DIR).rglob("*.html")):
            # One pseudo-Python line per template line; the template's indentation means nothing to Python.
            pseudo_python = "\n".join(line.lstrip() for line in templatize(path.read_text()).splitlines())
            found += _from_python_source(
                pseudo_python, PYTHON_KEYWORDS, "python", str(path.relative_to(base))
            )
    elif domain == "djangojs":
        for path in sorted((base / JAVASCRIPT_DIR).rglob("*.js")):
            found += _from_python_source(
                path.read_text(), JAVASCRIPT_KEYWORDS, "javascript", str(path.relative_to(base))
            )
    else:
        raise ValueError(f"unknown domain {domain!r}; expected one of {DOMAINS}")
    return found


def catalog_path(*, language: str, domain: str, base: Path | None = None) -> Path:
    """``locale/<language>/LC_MESSAGES/<domain>.po``, with Django's directory name (``zh_Hans``)."""
    return Path(base or settings.BASE_DIR) / "locale" / language / "LC_MESSAGES" / f"{domain}.po"


def catalog_read(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle)


def catalog_update(*, language: str, domain: str, base: Path | None = None) -> Catalog:
    """Bring the .po file in line with the sources: new messages added untranslated, gone ones made
    obsolete, translations kept. Returns the updated catalog (also written to disk)."""
    template = Catalog(domain=domain)
    for message in messages_extract(domain=domain, base=base):
        template.add(message.id, locations=[message.where], context=message.context)
    path = catalog_path(language=language, domain=domain, base=base)
    if path.exists():
        catalog = catalog_read(path)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = Catalog(locale=language, domain=domain)
    catalog.update(template, no_fuzzy_matching=True)
    catalog.fuzzy = False  # a fuzzy header would make `pybabel compile` skip the whole catalog
    catalog.project, catalog.version = "oss-direct-upload", "1.0"
    catalog.header_comment = (
        f"# {language} translations of the project's {domain} messages (manage.py translations)."
    )
    with path.open("wb") as handle:
        write_po(handle, catalog, width=110, omit_header=False, ignore_obsolete=True, sort_output=False)
    return catalog


def catalog_problems(*, language: str, domain: str, base: Path | None = None) -> list[str]:
    """What keeps the catalog from covering the sources: untranslated, fuzzy or missing messages, and
    translations whose placeholders differ from the original. Empty when all is well."""
    path = catalog_path(language=language, domain=domain, base=base)
    if not path.exists():
        return [f"{path} is missing"]
    catalog = catalog_read(path)
    problems = []
    for message in messages_extract(domain=domain, base=base):
        entry = catalog.get(message.id, context=message.context)
        where = "{}:{}".format(*message.where)
        if entry is None:
            problems.append(f"{where}: {message.id!r} is not in {path.name}")
        elif entry.fuzzy or not all(entry.string if isinstance(entry.string, tuple) else [entry.string]):
            problems.append(f"{where}: {message.id!r} has no {language} translation")
    for entry, errors in catalog.check():
        problems += [f"{path.name}: {entry.id!r}: {error}" for error in errors]
    return problems
