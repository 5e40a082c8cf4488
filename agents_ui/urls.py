from django.contrib.auth import views as auth_views
from django.urls import include, path

from agents_ui import views
from agents_ui.login import GuardedLoginView

urlpatterns = [
    path(
        "login/",
        GuardedLoginView.as_view(template_name="agents_ui/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("panel/", views.panel, name="panel"),
    path("language/", views.language, name="language"),
    path("shortcuts/", views.shortcuts, name="shortcuts"),
    path("panel/decisions/<uuid:decision_id>/", views.decision_refresh, name="decision_refresh"),
    path("panel/decisions/<uuid:decision_id>/actions/", views.decision_action, name="decision_action"),
    path("review/", include("agents_ui.review.urls")),
]
