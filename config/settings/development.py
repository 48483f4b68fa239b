"""Development (``DJANGO_DEBUG=1``, as ``make run`` sets it): the shared settings and the local sandbox.

Throw-away secrets stand in for unset ones (``base.py``), demo users may sign in, and
``python manage.py sandbox`` serves STS, RAM and OSS locally."""

from .base import *  # noqa: F403
from .base import stop_if_problems
from .sandbox import *  # noqa: F403

stop_if_problems()
