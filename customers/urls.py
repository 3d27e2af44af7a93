from django.urls import path

from customers import views

urlpatterns = [
    path("customers/", views.customer_list, name="customer-list"),
    path("customers/new/", views.customer_new, name="customer-new"),
    path("customers/columns/", views.customer_columns, name="customer-columns"),
    path("customers/bulk/", views.customer_bulk, name="customer-bulk"),
    path("customers/<int:pk>/", views.customer_detail, name="customer-detail"),
    path("customers/<int:pk>/edit/", views.customer_edit, name="customer-edit"),
    path("customers/<int:pk>/delete/", views.customer_delete, name="customer-delete"),
    path("customers/<int:pk>/tags/", views.customer_tags, name="customer-tags"),
    path(
        "customers/<int:pk>/tags/<int:tag_id>/remove/",
        views.customer_tag_remove,
        name="customer-tag-remove",
    ),
]
