from django.urls import path

from customers import views

urlpatterns = [
    path("customers/", views.customer_list, name="customer-list"),
    path("customers/<int:pk>/", views.customer_detail, name="customer-detail"),
]
