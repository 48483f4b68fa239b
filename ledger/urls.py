from django.urls import path

from . import apis

api_urlpatterns = [
    path("uploads/oss-events/", apis.OssEventsView.as_view(), name="oss_events"),
    path("uploads/objects/", apis.StoredObjectsApi.as_view(), name="stored_objects"),
]
