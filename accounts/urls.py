from django.contrib.auth import views as auth_views
from django.urls import path

from . import apis
from .throttling import throttle_login_posts

api_urlpatterns = [
    path("auth/token/", apis.TokenObtainApi.as_view(), name="token_obtain"),
    path("auth/token/refresh/", apis.TokenRefreshApi.as_view(), name="token_refresh"),
    path("auth/logout/", apis.LogoutApi.as_view(), name="logout_api"),
]

page_urlpatterns = [
    path(
        "login/",
        throttle_login_posts(auth_views.LoginView.as_view(redirect_authenticated_user=True)),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
