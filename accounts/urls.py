from django.contrib.auth import views as auth_views
from django.urls import path

from . import apis
from .throttling import throttle_login_posts

api_urlpatterns = [
    path("auth/token/", apis.TokenObtainApi.as_view(), name="token_obtain"),
    path("auth/token/refresh/", apis.TokenRefreshApi.as_view(), name="token_refresh"),
    path("auth/logout/", apis.LogoutApi.as_view(), name="logout_api"),
    path("me/", apis.MeApi.as_view(), name="me"),
    path("me/avatar/", apis.AvatarApi.as_view(), name="me_avatar"),
    path("me/avatar/upload-key/", apis.AvatarUploadKeyApi.as_view(), name="me_avatar_upload_key"),
]

page_urlpatterns = [
    path(
        "login/",
        throttle_login_posts(auth_views.LoginView.as_view(redirect_authenticated_user=True)),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
