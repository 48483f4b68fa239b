#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

SANDBOX_ONLY_IN_DEVELOPMENT = (
    "The sandbox is a development tool: production settings (DJANGO_DEBUG off) do not install it.\n"
    "Run it with DJANGO_DEBUG=1 (make run, make sandbox), or name the development settings:\n"
    "  DJANGO_SETTINGS_MODULE=config.settings.development python manage.py sandbox"
)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    if sys.argv[1:2] == ["sandbox"]:
        import django
        from django.apps import apps

        django.setup()
        if not apps.is_installed("sandbox"):
            sys.exit(SANDBOX_ONLY_IN_DEVELOPMENT)
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
