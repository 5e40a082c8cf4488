"""Settings come from the environment, and production refuses unsafe ones."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from retention.checks import shared_cache_check

ROOT = Path(__file__).resolve().parent.parent
# Variables the machine running the tests may set, which each test sets for itself or leaves unset.
OWN_VARIABLES = (
    "SECRET_KEY", "DEBUG", "DJANGO_ENV", "DATABASE_URL", "CELERY_BROKER_URL", "ALLOWED_HOSTS", "CACHE_URL",
    "FORMER_CUSTOMER_DAYS", "SCORING_JOB_DAYS",
)  # fmt: skip


def load_settings(tmp_path, monkeypatch, **env) -> ModuleType:
    """The settings module as a fresh copy read under this environment, beside the one the tests run on.

    In this process rather than a new one: the module reads only the environment and its data folder,
    and a new Python process costs the better part of a second in imports.
    """
    for name in OWN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in {"DATA_DIR": str(tmp_path), **env}.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("settings_under_test", ROOT / "config" / "settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_development_generates_a_secret_key_once_into_the_data_folder(tmp_path, monkeypatch):
    first = load_settings(tmp_path, monkeypatch)
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50
    assert key == first.SECRET_KEY
    assert key == load_settings(tmp_path, monkeypatch).SECRET_KEY
    assert (tmp_path / "secret_key").read_text() == key
    assert first.DATABASES["default"]["NAME"] == str(tmp_path / "db.sqlite3")


def test_production_refuses_to_start_without_a_real_secret_key(tmp_path, monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        load_settings(tmp_path, monkeypatch, DJANGO_ENV="production", DEBUG="false")


def test_production_refuses_to_start_with_debug_on(tmp_path, monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="DEBUG must be off"):
        load_settings(tmp_path, monkeypatch, DJANGO_ENV="production", DEBUG="true", SECRET_KEY="k" * 64)


def test_production_starts_with_a_real_key_and_debug_off(tmp_path, monkeypatch):
    loaded = load_settings(
        tmp_path, monkeypatch, DJANGO_ENV="production", DEBUG="false", SECRET_KEY="k" * 64, ALLOWED_HOSTS="x.nl"
    )
    assert loaded.DEBUG is False
    assert loaded.SECRET_KEY == "k" * 64


def test_a_typo_in_a_boolean_setting_is_refused(tmp_path, monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="DEBUG must be true or false"):
        load_settings(tmp_path, monkeypatch, DEBUG="ja")


def test_the_retention_period_of_former_customers_is_off_unless_set_and_never_negative(tmp_path, monkeypatch):
    assert load_settings(tmp_path, monkeypatch).FORMER_CUSTOMER_DAYS == 0
    assert load_settings(tmp_path, monkeypatch, FORMER_CUSTOMER_DAYS="730").FORMER_CUSTOMER_DAYS == 730
    with pytest.raises(ImproperlyConfigured, match="FORMER_CUSTOMER_DAYS must be at least 0, not -1"):
        load_settings(tmp_path, monkeypatch, FORMER_CUSTOMER_DAYS="-1")
    with pytest.raises(ImproperlyConfigured, match="SCORING_JOB_DAYS must be positive, not 0"):
        load_settings(tmp_path, monkeypatch, SCORING_JOB_DAYS="0")


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


def test_a_setting_given_wrongly_ends_a_command_with_its_message_not_a_traceback(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    environment.update(DATA_DIR=str(tmp_path), FORMER_CUSTOMER_DAYS="abc")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environment, capture_output=True, text=True
    )

    assert result.returncode == 1
    assert result.stderr == "configuration error: FORMER_CUSTOMER_DAYS must be a whole number, not 'abc'\n"


def test_a_worker_started_with_a_setting_given_wrongly_says_which_in_one_line(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    environment.update(DATA_DIR=str(tmp_path), CELERY_TASK_TIME_LIMIT="5")
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert result.returncode == 1
    assert result.stderr == "configuration error: CELERY_TASK_TIME_LIMIT must be at least 120, not 5\n"


def test_production_redirects_to_https_when_asked(tmp_path, monkeypatch):
    loaded = load_settings(
        tmp_path,
        monkeypatch,
        DJANGO_ENV="production",
        DEBUG="false",
        SECRET_KEY="k" * 64,
        ALLOWED_HOSTS="x.nl",
        SECURE_SSL_REDIRECT="true",
        BEHIND_TLS_PROXY="true",
    )

    assert loaded.SECURE_SSL_REDIRECT is True
    assert loaded.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")


def test_the_cache_is_each_processs_memory_unless_cache_url_names_a_shared_one(tmp_path, monkeypatch):
    monkeypatch.delenv("CACHE_URL", raising=False)
    assert load_settings(tmp_path, monkeypatch).CACHES["default"]["BACKEND"].endswith("LocMemCache")

    shared = load_settings(tmp_path, monkeypatch, CACHE_URL="redis://127.0.0.1:6379/1").CACHES["default"]

    assert shared == {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/1"}


@pytest.mark.parametrize(
    "url",
    [
        "bogus://somewhere",
        "dummycache://",  # no count persists: every sign-in would fail
        "memcache://127.0.0.1:11211",  # backends Django or this install lacks
        "pymemcache://127.0.0.1:11211",
    ],
)
def test_a_cache_url_the_counts_cannot_live_in_refuses_to_start(tmp_path, monkeypatch, url):
    with pytest.raises(ImproperlyConfigured, match="CACHE_URL must start with one of locmemcache://, redis://"):
        load_settings(tmp_path, monkeypatch, CACHE_URL=url)


def test_a_redis_cache_over_tls_or_a_socket_is_read(tmp_path, monkeypatch):
    tls = load_settings(tmp_path, monkeypatch, CACHE_URL="rediss://cache.example:6380/2").CACHES["default"]
    socket = load_settings(tmp_path, monkeypatch, CACHE_URL="redis:///run/redis.sock?db=1").CACHES["default"]

    assert tls["LOCATION"] == "rediss://cache.example:6380/2"
    assert socket["LOCATION"].startswith("unix:///run/redis.sock")


def test_the_deployment_check_warns_of_a_cache_each_process_keeps_alone(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    [warning] = shared_cache_check(None)
    assert warning.id == "retention.W001" and "CACHE_URL" in warning.hint

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://x"}}
    assert shared_cache_check(None) == []


def test_the_deployment_check_is_registered_for_check_deploy():
    assert shared_cache_check in checks.registry.registry.get_checks(include_deployment_checks=True)
    assert shared_cache_check not in checks.registry.registry.get_checks(include_deployment_checks=False)


def test_api_rates_default_to_a_call_centres_peak_and_take_any_period(tmp_path, monkeypatch):
    rates = load_settings(tmp_path, monkeypatch).REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert rates == {"api_client": "50/second", "api_client_bulk": "60/minute"}

    changed = load_settings(tmp_path, monkeypatch, API_RATE="3000/min", API_BULK_RATE="100/h")
    assert changed.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] == {"api_client": "3000/min", "api_client_bulk": "100/h"}


@pytest.mark.parametrize("bad", ["fast", "50", "0/second", "-5/minute", "50/week", "50/", "1.5/second"])
def test_an_api_rate_the_throttle_cannot_read_refuses_to_start(tmp_path, monkeypatch, bad):
    with pytest.raises(ImproperlyConfigured, match="API_RATE must be a number of requests per period"):
        load_settings(tmp_path, monkeypatch, API_RATE=bad)


def test_earlier_secret_keys_are_read_as_a_list_however_it_is_spaced(tmp_path, monkeypatch):
    assert load_settings(tmp_path, monkeypatch).SECRET_KEY_FALLBACKS == []
    spaced = load_settings(tmp_path, monkeypatch, SECRET_KEY_FALLBACKS=" old-key-one , old-key-two,")

    assert spaced.SECRET_KEY_FALLBACKS == ["old-key-one", "old-key-two"]


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("LOG_LEVEL", "verbose", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not 'verbose'"),
        ("CELERY_TASK_TIME_LIMIT", "60", "CELERY_TASK_TIME_LIMIT must be at least 120, not 60"),
    ],
)
def test_a_log_level_or_task_time_limit_that_cannot_work_is_refused_naming_it(
    tmp_path, monkeypatch, name, value, problem
):
    with pytest.raises(ImproperlyConfigured, match=problem):
        load_settings(tmp_path, monkeypatch, **{name: value})


def test_a_log_level_is_read_in_any_case(tmp_path, monkeypatch):
    assert load_settings(tmp_path, monkeypatch, LOG_LEVEL=" warning ").LOGGING["root"]["level"] == "WARNING"
