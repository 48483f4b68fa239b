"""Production (``DJANGO_DEBUG`` off): the shared settings, no sandbox, and a start that refuses an
environment with any secret or required value missing, naming all of them at once."""

from .base import *  # noqa: F403
from .base import REQUIRED_IN_PRODUCTION, env, problems, stop_if_problems

if not DEBUG:  # noqa: F405 -- a production module named directly with DJANGO_DEBUG=1 stays a development run
    problems[:0] = [
        f"  {name:<26} {meaning}"
        for name, meaning in REQUIRED_IN_PRODUCTION.items()
        if not env.str(name, default="")
    ]
stop_if_problems()
