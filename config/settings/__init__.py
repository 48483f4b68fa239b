"""The settings module Django loads by default (``DJANGO_SETTINGS_MODULE=config.settings``, as manage.py,
wsgi.py and gunicorn set it): ``DJANGO_DEBUG=1`` selects development (``development.py``: the local
sandbox installed), anything else production (``production.py``: no sandbox, every secret required).
The tests load ``config.settings.test``; each module can also be named directly."""

from .base import env

if env.bool("DJANGO_DEBUG", default=False):
    from .development import *  # noqa: F403
else:
    from .production import *  # noqa: F403
