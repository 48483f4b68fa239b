from django.urls import path

from . import apis, views

api_urlpatterns = [
    path("me/", apis.MeApi.as_view(), name="me"),
    path("me/avatar/", apis.AvatarApi.as_view(), name="me_avatar"),
    path("me/avatar/upload-key/", apis.AvatarUploadKeyApi.as_view(), name="me_avatar_upload_key"),
]

page_urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
]
