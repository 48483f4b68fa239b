from django.core.management.base import BaseCommand, CommandError

from core.docs_reference import reference_pages


class Command(BaseCommand):
    help = (
        "Write the documentation's reference pages that come from the code (error codes, system checks), "
        "or with --check fail while a committed one differs from what the code says."
    )

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="change nothing; fail if a page is stale")

    def handle(self, *args, check: bool = False, **options):
        stale = []
        for path, text in reference_pages().items():
            current = path.read_text(encoding="utf-8") if path.exists() else None
            if current == text:
                continue
            if check:
                stale.append(str(path.relative_to(path.parents[2])))
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
                self.stdout.write(f"wrote {path.relative_to(path.parents[2])}")
        if stale:
            raise CommandError(
                f"Stale: {', '.join(stale)}. Run `python manage.py docs_reference` and commit the result."
            )
