from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import to_locale

from core.translations import DOMAINS, catalog_problems, catalog_update


class Command(BaseCommand):
    help = (
        "Update our .po catalogs from the sources (Babel; no GNU gettext needed), or with --check report "
        "messages without a translation. `make install` compiles the catalogs."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="change nothing; fail if a message lacks a translation"
        )

    def handle(self, *args, check: bool = False, **options):
        languages = [to_locale(code) for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE]
        problems = []
        for language in languages:
            for domain in DOMAINS:
                if check:
                    problems += catalog_problems(language=language, domain=domain)
                else:
                    catalog = catalog_update(language=language, domain=domain)
                    missing = sum(1 for m in catalog if m.id and not m.string)
                    self.stdout.write(
                        f"{language}/{domain}.po: {len(catalog)} messages, {missing} untranslated"
                    )
        if problems:
            raise CommandError("\n".join(problems))
