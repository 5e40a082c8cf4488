"""The Celery app. The broker comes from settings (embedded filesystem broker by default)."""

import logging
import os
import sys
from collections.abc import Callable

from celery import Celery
from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("retention")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_configure.connect
def _settings_or_one_line(sender: Celery, **kwargs) -> None:
    """A worker started with a setting the environment gives wrongly says which, in one line, as manage.py does:
    the settings load here first, and a traceback through Celery's option parsing says nothing more."""
    from django.conf import settings

    try:
        settings.INSTALLED_APPS  # noqa: B018 - reading a setting loads them all
    except ImproperlyConfigured as error:
        sys.stderr.write(f"configuration error: {error}\n")
        sys.exit(1)


logger = logging.getLogger(__name__)


def sent_to_worker(send: Callable[[], object], *, what: str) -> str:
    """Hand a task to the broker: "" once it took it, else why not, logged with its traceback.

    Called after the write the task follows is committed (on_commit): raising here would answer the request with
    an error while what it asked for is stored, and a client retrying would store it twice. The caller records
    the failure where it is seen instead (a job marked failed), and the client can ask again.
    """
    try:
        send()
    except Exception as error:  # a broker refusing, timing out or misconfigured: any failure to hand the task over
        logger.exception("could not queue %s: the broker did not take it", what)
        return f"the task broker could not be reached ({type(error).__name__}: {error}); ask again once it is back"
    return ""
