from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User

DEMO_USERS = (
    # username, password, is_staff
    ("demo", "demo-password", False),
    ("demo2", "demo2-password", False),
    ("admin", "admin-password", True),
)


class Command(BaseCommand):
    help = "Create the demo users the README names (development only: refuses when DEBUG is off)."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "Demo users have well-known passwords; create_demo_users runs only with DJANGO_DEBUG=1."
            )
        for username, password, is_staff in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
                user.is_staff = user.is_superuser = is_staff
                user.is_demo = True  # refused at sign-in whenever DEBUG is off
                user.save()
                self.stdout.write(f"Created {'staff ' if is_staff else ''}user {username}")
