from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView

from accounts.throttling import throttle_login_posts
from accounts.urls import api_urlpatterns as accounts_api
from accounts.urls import page_urlpatterns as accounts_pages
from avatars.urls import api_urlpatterns as avatars_api
from avatars.urls import page_urlpatterns as avatars_pages
from core.schema import SwaggerUiView
from ledger.urls import api_urlpatterns as ledger_api
from uploads.urls import api_urlpatterns as uploads_api

handler400 = "core.exceptions.bad_request"
handler403 = "core.exceptions.permission_denied"
handler404 = "core.exceptions.not_found"
handler500 = "core.exceptions.server_error"

# /healthz and /readyz are answered by core.health.ProbeMiddleware, ahead of the host check.
urlpatterns = [
    path("", include(avatars_pages)),
    path("admin/login/", throttle_login_posts(admin.site.login)),
    path("admin/", admin.site.urls),
    path("accounts/", include(accounts_pages)),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the language switcher posts here
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("api/", include(accounts_api + avatars_api + uploads_api + ledger_api)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SwaggerUiView.as_view(url_name="schema"), name="swagger-ui"),
]
