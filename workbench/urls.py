from django.urls import include, path

from workbench import views
from workbench.api import api

urlpatterns = [
    path("", views.home, name="home"),
    path("palette/", views.palette, name="palette"),
    path("api/v1/", api.urls),
    path("", include("members.urls")),
    path("", include("apitokens.urls")),
    path("", include("system.urls")),
    path("", include("customers.urls")),
    path("", include("customers.field_urls")),
    path("", include("tags.urls")),
    path("", include("events.urls")),
    path("", include("segments.urls")),
    path("", include("imports.urls")),
    path("", include("activity.urls")),
    path("", include("exports.urls")),
    path("", include("donotcontact.urls")),
    path("", include("donotcontact.import_urls")),
    path("", include("webhooks.urls")),
    path("", include("notifications.urls")),
]
