from __future__ import annotations

from django.urls import path

from donotcontact import views

urlpatterns = [
    path("do-not-contact/", views.index, name="dnc-list"),
]
