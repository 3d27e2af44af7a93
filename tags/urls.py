from django.urls import path

from tags import views

urlpatterns = [
    path("settings/tags/", views.tag_list, name="tag-list"),
    path("settings/tags/new/", views.tag_create, name="tag-create"),
    path("settings/tags/<int:pk>/", views.tag_edit, name="tag-edit"),
    path("settings/tags/<int:pk>/delete/", views.tag_delete, name="tag-delete"),
    path("settings/tags/<int:pk>/merge/", views.tag_merge, name="tag-merge"),
]
