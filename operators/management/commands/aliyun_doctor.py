"""`manage.py aliyun_doctor`: a live ✓/✗ check of STS, the role, the bucket, CORS and the clock."""

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from operators.doctor import DoctorInputs, checks_json, run_checks
from operators.management.commands._aliyun_admin import (
    admin_credentials,
    quiet_sdk_loggers,
    site_origins,
)


class Command(BaseCommand):
    help = (
        "Check the live Alibaba Cloud configuration the way the first upload uses it; each ✗ says what to "
        "change. Exit status 0 when every check passes, 1 otherwise."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--origin",
            action="append",
            help="an origin to check CORS for (repeatable); default: every DJANGO_CSRF_TRUSTED_ORIGINS "
            "and ALIYUN_OSS_APP_ORIGINS",
        )
        parser.add_argument("--json", action="store_true", help="print the results as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        with quiet_sdk_loggers():
            results = run_checks(
                DoctorInputs(
                    origins=tuple(site_origins(options["origin"])),
                    admin=admin_credentials(sandbox_fallback=False),
                )
            )
        if options["json"]:
            self.stdout.write(json.dumps(checks_json(results), indent=2, ensure_ascii=False))
        else:
            for result in results:
                if result.ok:
                    self.stdout.write(self.style.SUCCESS(f"✓ {result.title}") + f": {result.detail}")
                else:
                    self.stdout.write(self.style.ERROR(f"✗ {result.title}") + f": {result.detail}")
                    self.stdout.write(f"    fix: {result.fix}")
            failed = sum(not result.ok for result in results)
            self.stdout.write(f"\n{len(results) - failed} of {len(results)} checks passed.")
        if not all(result.ok for result in results):
            sys.exit(1)
