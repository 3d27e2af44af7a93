from __future__ import annotations

from django.urls import path

from donotcontact import views

urlpatterns = [
    path("do-not-contact/", views.dnc_list, name="dnc-list"),
    path("do-not-contact/add/", views.dnc_add, name="dnc-add"),
    path("do-not-contact/bulk/", views.dnc_bulk, name="dnc-bulk"),
    path("do-not-contact/export/", views.dnc_export, name="dnc-export"),
    path("do-not-contact/<int:pk>/remove/", views.dnc_remove, name="dnc-remove"),
]
