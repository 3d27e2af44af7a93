from django.urls import path

from members import views

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("profile/", views.profile, name="profile"),
    path("settings/members/", views.member_list, name="member-list"),
    path("settings/members/<int:pk>/", views.member_edit, name="member-edit"),
]
