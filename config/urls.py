from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.throttling import throttle_login_posts
from accounts.urls import api_urlpatterns as accounts_api
from accounts.urls import page_urlpatterns as accounts_pages
from uploads.urls import api_urlpatterns as uploads_api
from uploads.views import HomeView

handler400 = "config.exceptions.bad_request"
handler403 = "config.exceptions.permission_denied"
handler404 = "config.exceptions.not_found"
handler500 = "config.exceptions.server_error"

# /healthz and /readyz are answered by config.health.ProbeMiddleware, ahead of the host check.
urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("admin/login/", throttle_login_posts(admin.site.login)),
    path("admin/", admin.site.urls),
    path("accounts/", include(accounts_pages)),
    path("api/", include(accounts_api + uploads_api)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]
