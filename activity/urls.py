from django.urls import path

from activity import views

urlpatterns = [
    path("settings/activity/", views.activity_list, name="activity-list"),
]
