from django.urls import path

from . import apis

api_urlpatterns = [
    path("uploads/sts-token/", apis.StsTokenApi.as_view(), name="sts_token"),
    path("uploads/post-policy/", apis.PostPolicyApi.as_view(), name="post_policy"),
    path("uploads/sts-server/", apis.StsServerApi.as_view(), name="sts_server"),
    path("uploads/sts-server-url/", apis.CredentialUrlCreateApi.as_view(), name="sts_server_url"),
    # The secret is in the path (stock providers can only GET a URL); core/redaction.py keeps it out of logs.
    path(
        "uploads/sts-server/<str:secret>/",
        apis.CredentialUrlStsServerApi.as_view(),
        name="sts_server_credential_url",
    ),
]
