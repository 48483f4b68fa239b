from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """The local stand-in for Alibaba Cloud STS and OSS (``python manage.py sandbox``).

    Installed only for its management command; it has no models, and no product module imports it.
    """

    name = "sandbox"
    verbose_name = "Local Alibaba Cloud sandbox"
