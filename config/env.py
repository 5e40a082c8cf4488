"""Typed readers for settings that come from the environment.

Each helper refuses a value it cannot use with ImproperlyConfigured instead of
guessing, so a typo in a deployment fails at start-up, not mid-call.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()

ENVIRONMENTS = ("development", "test", "production")
INSECURE_KEY_PREFIX = "django-insecure"
MIN_PRODUCTION_KEY_LENGTH = 50


def environment_name() -> str:
    name = env.str("DJANGO_ENV", default="development")
    if name not in ENVIRONMENTS:
        raise ImproperlyConfigured(f"DJANGO_ENV must be one of {', '.join(ENVIRONMENTS)}, not {name!r}")
    return name


def data_dir(base_dir: Path) -> Path:
    """The folder that holds every piece of state (database, models, broker)."""
    path = Path(env.str("DATA_DIR", default=str(base_dir / "var")))
    if not path.is_absolute():
        path = base_dir / path
    path.mkdir(parents=True, exist_ok=True)
    return path


def secret_key(*, data: Path, production: bool) -> str:
    """SECRET_KEY from the environment; in development one is generated once into the data folder."""
    key = env.str("SECRET_KEY", default="")
    if production:
        if len(key) < MIN_PRODUCTION_KEY_LENGTH or key.startswith(INSECURE_KEY_PREFIX):
            raise ImproperlyConfigured(
                f"production needs SECRET_KEY set to a random value of at least {MIN_PRODUCTION_KEY_LENGTH} characters"
            )
        return key
    if key:
        return key
    key_file = data / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(64))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def boolean(name: str, *, default: bool) -> bool:
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def positive_int(name: str, *, default: int, maximum: int | None = None) -> int:
    return _whole_number(name, default=default, minimum=1, maximum=maximum)


def whole_number(name: str, *, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    """A count that may be 0 (a feature left off), or from `minimum`."""
    return _whole_number(name, default=default, minimum=minimum, maximum=maximum)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_level(name: str, *, default: str) -> str:
    """One of logging's level names, in any case: an unknown one would stop logging from being configured."""
    raw = env.str(name, default=default)
    if raw.strip().upper() not in LOG_LEVELS:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(LOG_LEVELS)}, not {raw!r}")
    return raw.strip().upper()


def _whole_number(name: str, *, default: int, minimum: int, maximum: int | None = None) -> int:
    raw = env.str(name, default=str(default))
    try:
        value = int(raw)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from error
    if value < minimum:
        rule = "must be positive" if minimum == 1 else f"must be at least {minimum}"
        raise ImproperlyConfigured(f"{name} {rule}, not {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum:,}, not {value:,}")
    return value


def fraction(name: str, *, default: float) -> float:
    raw = env.str(name, default=str(default))
    try:
        value = float(raw)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be a number between 0 and 1, not {raw!r}") from error
    if not 0.0 <= value <= 1.0:
        raise ImproperlyConfigured(f"{name} must be between 0 and 1, not {value}")
    return value


RATE_PERIODS = ("second", "minute", "hour", "day")


def rate(name: str, *, default: str) -> str:
    """A request rate as DRF's throttles read it, "N/period" (second, minute, hour or day, or their first
    letter); refused here, since the throttle would only fail on the first request."""
    raw = env.str(name, default=default).strip()
    count, _, period = raw.partition("/")
    if not (count.isdecimal() and int(count) > 0 and any(p.startswith(period) for p in RATE_PERIODS) and period):
        raise ImproperlyConfigured(f"{name} must be a number of requests per period, e.g. 50/second, not {raw!r}")
    return raw


# The caches the sign-in lockout and the API's rate limits can count in: they need atomic increments that
# persist, which a dummy cache lacks, and the memcached schemes map to backends that are not installed.
CACHE_SCHEMES = ("locmemcache", "redis", "rediss")


def cache(name: str, *, default: str) -> dict:
    """The default cache from a URL: locmemcache:// (each process's memory) or redis(s)://host:port/db."""
    raw = env.str(name, default=default)
    scheme = raw.partition("://")[0]
    if scheme not in CACHE_SCHEMES:
        raise ImproperlyConfigured(
            f"{name} must start with one of {', '.join(s + '://' for s in CACHE_SCHEMES)}, not {raw!r}"
        )
    return env.cache_url_config(raw)


def embedded_broker_options(data: Path) -> dict:
    """Transport options for kombu's filesystem broker: a queue folder needing no server."""
    folders = {name: data / "broker" / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "store_processed": False,
    }
