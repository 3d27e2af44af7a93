from django.urls import path

from customers import field_views as views

urlpatterns = [
    path("settings/custom-fields/", views.field_list, name="custom-field-list"),
    path("settings/custom-fields/<int:pk>/", views.field_edit, name="custom-field-edit"),
    path("settings/custom-fields/<int:pk>/delete/", views.field_delete, name="custom-field-delete"),
    path("settings/custom-fields/<int:pk>/stats/", views.field_stats, name="custom-field-stats"),
]
