"""Dates as the audit lists show them (audit/admin_base.py audit_time): ``2026-12-05 23:13:31 UTC``,
to the second with the zone's name, on every admin page and in both languages (Django's own formats
for this locale, only these replaced; FORMAT_MODULE_PATH in config/settings/base.py)."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
