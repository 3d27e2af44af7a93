from __future__ import annotations

from django.urls import path

from donotcontact import import_views as views

urlpatterns = [
    path("do-not-contact/import/", views.dnc_import_new, name="dnc-import-new"),
    path("do-not-contact/import/<int:pk>/map/", views.dnc_import_map, name="dnc-import-map"),
    path("do-not-contact/import/<int:pk>/", views.dnc_import_detail, name="dnc-import-detail"),
    path("do-not-contact/import/<int:pk>/run/", views.dnc_import_run, name="dnc-import-run"),
]
