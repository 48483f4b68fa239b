from django.urls import path

from . import apis

api_urlpatterns = [
    path("uploads/sts-token/", apis.StsTokenApi.as_view(), name="sts_token"),
    path("uploads/post-policy/", apis.PostPolicyApi.as_view(), name="post_policy"),
]
