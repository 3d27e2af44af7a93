from django.urls import path

from apitokens import views

urlpatterns = [
    path("settings/api-tokens/", views.token_list, name="api-token-list"),
    path("settings/api-tokens/<int:pk>/revoke/", views.token_revoke, name="api-token-revoke"),
]
