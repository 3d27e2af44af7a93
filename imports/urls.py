from django.urls import path

from imports import views

urlpatterns = [
    path("customers/import/", views.import_new, name="import-new"),
    path("customers/import/sample.csv", views.import_sample, name="import-sample"),
    path("imports/", views.import_list, name="import-list"),
    path("imports/<int:pk>/map/", views.import_map, name="import-map"),
    path("imports/<int:pk>/map/column/<int:index>/", views.import_column, name="import-column"),
    path("imports/<int:pk>/", views.import_review, name="import-review"),
    path("imports/<int:pk>/run/", views.import_run_view, name="import-run"),
    path("imports/<int:pk>/errors.csv", views.import_errors, name="import-errors"),
    path("imports/<int:pk>/<str:action>/", views.import_action, name="import-action"),
]
