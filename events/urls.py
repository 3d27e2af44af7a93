from django.urls import path

from events import views

urlpatterns = [
    path("settings/events/", views.event_list, name="event-list"),
    path("customers/<int:pk>/events/", views.customer_events, name="customer-events"),
]
