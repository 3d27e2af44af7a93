from __future__ import annotations

from django.urls import path

from webhooks import views

urlpatterns = [
    path("webhooks/", views.webhook_list, name="webhook-list"),
    path("webhooks/new/", views.webhook_new, name="webhook-new"),
    path("webhooks/<int:pk>/", views.webhook_detail, name="webhook-detail"),
    path("webhooks/<int:pk>/edit/", views.webhook_edit, name="webhook-edit"),
    path("webhooks/<int:pk>/delete/", views.webhook_delete, name="webhook-delete"),
    path("webhooks/<int:pk>/enable/", views.webhook_enable, name="webhook-enable"),
    path("webhooks/<int:pk>/rotate/", views.webhook_rotate, name="webhook-rotate"),
    path("webhooks/<int:pk>/test/", views.webhook_test, name="webhook-test"),
    path("webhooks/<int:pk>/replay/", views.webhook_replay_range, name="webhook-replay-range"),
    path(
        "webhooks/<int:pk>/deliveries/<int:delivery_pk>/",
        views.webhook_delivery,
        name="webhook-delivery",
    ),
    path(
        "webhooks/<int:pk>/deliveries/<int:delivery_pk>/replay/",
        views.webhook_replay,
        name="webhook-replay",
    ),
    path(
        "webhooks/send/customers/",
        views.webhook_handover_customers,
        name="webhook-handover-customers",
    ),
    path(
        "webhooks/send/segment/<int:pk>/",
        views.webhook_handover_segment,
        name="webhook-handover-segment",
    ),
]
