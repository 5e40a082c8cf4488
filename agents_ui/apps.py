from django.apps import AppConfig


class AgentsUiConfig(AppConfig):
    name = "agents_ui"
    verbose_name = "Agent pages"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from agents_ui.login import sign_in_lasts_a_shift

        # Both sign-ins, the panel's and the admin's.
        user_logged_in.connect(sign_in_lasts_a_shift, dispatch_uid="agents_ui.sign_in_lasts_a_shift")
