from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OperatorsConfig(AppConfig):
    """The operators' tools: ``aliyun_setup`` (what the account must hold, and applying it) and
    ``aliyun_doctor`` (live checks of a deployment). No models, no web pages."""

    name = "operators"
    verbose_name = _("Operator tools")
