from django.urls import path

from . import apis

api_urlpatterns = [
    path("uploads/sts-token/", apis.StsTokenApi.as_view(), name="sts_token"),
]
