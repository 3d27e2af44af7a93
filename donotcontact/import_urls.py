from __future__ import annotations

from django.urls import path

from donotcontact import import_views as views

urlpatterns = [
    path("do-not-contact/import/", views.index, name="dnc-import-new"),
]
