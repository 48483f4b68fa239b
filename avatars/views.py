from typing import Any

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.views.generic import TemplateView

from .formats import AVATAR_CONTENT_TYPES


class HomeView(LoginRequiredMixin, TemplateView):
    """The demo page: the browser uploads an avatar straight to OSS (static/js/avatar-upload.js).

    The limits come from the server so the page can say "too large" before uploading anything;
    the API checks them again.
    """

    template_name = "home.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            avatar_max_bytes=settings.AVATAR_MAX_BYTES,
            avatar_content_types=list(AVATAR_CONTENT_TYPES),
            **kwargs,
        )
