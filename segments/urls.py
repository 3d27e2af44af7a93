from django.urls import path

from segments import builder_views, views

urlpatterns = [
    path("segments/", views.segment_list, name="segment-list"),
    path("segments/new/", builder_views.segment_new, name="segment-new"),
    path("segments/builder/", builder_views.builder, name="segment-builder"),
    path("segments/<int:pk>/", views.segment_detail, name="segment-detail"),
    path("segments/<int:pk>/edit/", builder_views.segment_edit, name="segment-edit"),
    path("segments/<int:pk>/duplicate/", views.segment_duplicate, name="segment-duplicate"),
    path("segments/<int:pk>/delete/", views.segment_delete, name="segment-delete"),
    path("segments/<int:pk>/members.csv", views.segment_export, name="segment-export"),
    path("customers/<int:pk>/segments/", views.customer_segments, name="customer-segments"),
    path(
        "customers/<int:pk>/segments/<int:segment_pk>/why/",
        views.customer_segment_explain,
        name="customer-segment-explain",
    ),
]
