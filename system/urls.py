from django.urls import path

from system import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("settings/system/", views.status, name="system-status"),
    path("settings/system/worker-check/", views.worker_check, name="system-worker-check"),
]
