from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from agents_ui.login import GuardedAdminAuthenticationForm
from config.health import health

# The admin's sign-in guards against guessing as the panel's does: its accounts are the most powerful.
admin.site.login_form = GuardedAdminAuthenticationForm

# Outside the API, whose own catch-all answers in JSON.
handler404 = "agents_ui.views.page_not_found"
# JSON under the API; elsewhere agents_ui/templates/500.html as it is.
handler500 = "retention.api.errors.server_error"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="panel", permanent=False)),
    path("health/", health, name="health"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("retention.api.urls")),
    path("", include("agents_ui.urls")),
]
