"""Admin labels of third-party apps that ship no Simplified Chinese for them (simplejwt's token
blacklist, django-axes), marked here so that `manage.py translations` puts them in our catalogs.

Django looks a message up in every catalog, ours (LOCALE_PATHS) first, so the translations in
locale/zh_Hans apply to those apps' own gettext_lazy() labels unchanged: no subclassed AppConfig or
proxy model (which would rename their admin URLs and permissions) is needed. Nothing imports this
module; the strings are exactly the apps' msgids (rest_framework_simplejwt/token_blacklist/models.py,
axes/models.py and apps.py).
"""

from django.utils.translation import gettext_noop

THIRD_PARTY_LABELS = (
    # rest_framework_simplejwt.token_blacklist
    gettext_noop("Outstanding Token"),
    gettext_noop("Outstanding Tokens"),
    gettext_noop("Blacklisted Token"),
    gettext_noop("Blacklisted Tokens"),
    gettext_noop("jti"),
    gettext_noop("token"),
    gettext_noop("user"),
    gettext_noop("created at"),
    gettext_noop("expires at"),
    gettext_noop("blacklisted at"),
    # axes
    gettext_noop("Axes"),
    gettext_noop("access failure"),
    gettext_noop("access failures"),
    gettext_noop("access attempt"),
    gettext_noop("access attempts"),
    gettext_noop("access attempt expiration"),
    gettext_noop("access attempt expirations"),
    gettext_noop("access log"),
    gettext_noop("access logs"),
    gettext_noop("User Agent"),
    gettext_noop("IP Address"),
    gettext_noop("HTTP Accept"),
    gettext_noop("Path"),
    gettext_noop("Attempt Time"),
    gettext_noop("Access lock out"),
    gettext_noop("GET Data"),
    gettext_noop("POST Data"),
    gettext_noop("Failed Logins"),
    gettext_noop("Access Attempt"),
    gettext_noop("Expires At"),
    gettext_noop("Logout Time"),
    gettext_noop("Session key hash (sha256)"),
)
