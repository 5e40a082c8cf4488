"""Settings come from the environment, and production refuses unsafe ones."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_settings(tmp_path, **env) -> subprocess.CompletedProcess:
    unset = {"SECRET_KEY", "DEBUG", "DJANGO_ENV", "DATABASE_URL", "CELERY_BROKER_URL"}
    environment = {k: v for k, v in os.environ.items() if k not in unset}
    environment.update({"DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings", **env})
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DEBUG, settings.DATABASES['default']['NAME'])"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True)


def test_development_generates_a_secret_key_once_into_the_data_folder(tmp_path):
    first = load_settings(tmp_path)
    assert first.returncode == 0, first.stderr
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50
    assert load_settings(tmp_path).returncode == 0
    assert (tmp_path / "secret_key").read_text() == key
    assert str(tmp_path / "db.sqlite3") in first.stdout


def test_production_refuses_to_start_without_a_real_secret_key(tmp_path):
    result = load_settings(tmp_path, DJANGO_ENV="production", DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_to_start_with_debug_on(tmp_path):
    result = load_settings(tmp_path, DJANGO_ENV="production", DEBUG="true", SECRET_KEY="k" * 64)
    assert result.returncode != 0
    assert "DEBUG must be off" in result.stderr


def test_production_starts_with_a_real_key_and_debug_off(tmp_path):
    result = load_settings(tmp_path, DJANGO_ENV="production", DEBUG="false", SECRET_KEY="k" * 64, ALLOWED_HOSTS="x.nl")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("False")


def test_a_typo_in_a_boolean_setting_is_refused(tmp_path):
    result = load_settings(tmp_path, DEBUG="ja")
    assert result.returncode != 0
    assert "DEBUG must be true or false" in result.stderr


def test_production_passes_the_deployment_checks_for_https(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DATABASE_URL", "CELERY_BROKER_URL"}}
    environment.update(
        DATA_DIR=str(tmp_path), DJANGO_ENV="production", DEBUG="false", SECRET_KEY="k" * 64, ALLOWED_HOSTS="x.nl"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=environment, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    for check in ("W002", "W004", "W012", "W016"):  # framing, HSTS, secure cookies
        assert f"security.{check}" not in result.stdout + result.stderr


def test_production_redirects_to_https_when_asked(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DATABASE_URL", "CELERY_BROKER_URL"}}
    environment.update(
        DATA_DIR=str(tmp_path),
        DJANGO_ENV="production",
        DEBUG="false",
        SECRET_KEY="k" * 64,
        ALLOWED_HOSTS="x.nl",
        SECURE_SSL_REDIRECT="true",
        BEHIND_TLS_PROXY="true",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_PROXY_SSL_HEADER)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True ('HTTP_X_FORWARDED_PROTO', 'https')"
