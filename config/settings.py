"""Settings for the retention service, read from the environment (see README: Configuration)."""

from __future__ import annotations

from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config import env as cfg
from retention.api.rates import DEFAULT_RATES

BASE_DIR = Path(__file__).resolve().parent.parent
ENVIRONMENT = cfg.environment_name()
PRODUCTION = ENVIRONMENT == "production"
DATA_DIR = cfg.data_dir(BASE_DIR)
MODEL_DIR = DATA_DIR / "models"
MODEL_DIR.mkdir(exist_ok=True)

DEBUG = cfg.boolean("DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production")
SECRET_KEY = cfg.secret_key(data=DATA_DIR, production=PRODUCTION)
# Earlier keys still accepted while a rotation completes (comma-separated): sessions signed with them stay valid, and
# the refusals of customers erased at their request, kept as digests under the key of their time, still match.
SECRET_KEY_FALLBACKS = [key.strip() for key in cfg.env.list("SECRET_KEY_FALLBACKS", default=[]) if key.strip()]
ALLOWED_HOSTS = cfg.env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = cfg.env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Origins of CRM pages allowed to embed the agent panel in a frame.
CRM_ORIGINS = cfg.env.list("CRM_ORIGINS", default=[])
if CRM_ORIGINS:
    # Inside a cross-site frame, browsers send only SameSite=None cookies, and only over HTTPS.
    SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "None"
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    CSRF_TRUSTED_ORIGINS = [*CSRF_TRUSTED_ORIGINS, *CRM_ORIGINS]
DEMO_PASSWORD = cfg.env.str("DEMO_PASSWORD", default="")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "retention",
    "ml",
    "agents_ui",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "agents_ui.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "agents_ui.middleware.FrameAncestorsMiddleware",
    "agents_ui.middleware.PrivatePagesMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "agents_ui.review.context_processors.review_navigation",
            ],
        },
    },
]

DATABASES = {"default": cfg.env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the worker writes.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["OPTIONS"]["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
# A form from a page that outlived its session is explained (and an htmx click sent to log in again).
CSRF_FAILURE_VIEW = "agents_ui.views.csrf_failure"
LOGIN_REDIRECT_URL = "panel"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "nl"
LANGUAGES = [("nl", _("Dutch")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "agents_ui" / "locale"]
TIME_ZONE = "Europe/Amsterdam"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

# The API's per-client rates and the sign-in lockout count here. The default keeps them in each server process's
# memory; where several processes serve, CACHE_URL (e.g. redis://127.0.0.1:6379/1) makes them count together.
CACHES = {"default": cfg.cache("CACHE_URL", default="locmemcache://")}

# How many proxies of the provider's own stand in front of the service, each appending the address it was sent from
# to X-Forwarded-For: the sign-in lockout counts by the client's address, read from there (0: REMOTE_ADDR).
FORWARDED_FOR_PROXIES = cfg.whole_number("FORWARDED_FOR_PROXIES", default=0, maximum=10)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["retention.api.auth.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["retention.api.permissions.HasApiClient"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": ["retention.api.parsers.StreamedJSONParser"],
    "EXCEPTION_HANDLER": "retention.api.errors.json_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {
        "api_client": cfg.rate("API_RATE", default=DEFAULT_RATES["api_client"]),
        "api_client_bulk": cfg.rate("API_BULK_RATE", default=DEFAULT_RATES["api_client_bulk"]),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Retention decision service API",
    "DESCRIPTION": "Churn risk, fair counter-offers and outcome logging for CRM systems.",
    "VERSION": "1.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {
        "OutcomeResultEnum": "retention.services.outcomes.OUTCOME_RESULTS",
        "RenewalResultEnum": "retention.models.RenewalResult.Result",
        "ContractStatusEnum": "retention.models.Contract.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "retention.api.schema.closed_request_bodies",
        "retention.api.schema.stated_limits",
    ],
}

CELERY_BROKER_URL = cfg.env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = cfg.embedded_broker_options(DATA_DIR)
CELERY_RESULT_BACKEND = cfg.env.str("CELERY_RESULT_BACKEND", default=f"file://{DATA_DIR / 'celery-results'}")
if CELERY_RESULT_BACKEND.startswith("file://"):
    (DATA_DIR / "celery-results").mkdir(exist_ok=True)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# The soft limit, a minute before, lets a task note its failure before the worker kills it.
CELERY_TASK_TIME_LIMIT = cfg.whole_number("CELERY_TASK_TIME_LIMIT", default=1800, minimum=120)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = cfg.boolean("CELERY_TASK_ALWAYS_EAGER", default=False)
# Installations sharing one broker keep apart by queue name; a worker consumes its default queue.
CELERY_TASK_DEFAULT_QUEUE = cfg.env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")

# The learning loop (ml.jobs): when to retrain, and what a challenger must show to replace the champion.
RETRAIN_MIN_LABELS = cfg.positive_int("RETRAIN_MIN_LABELS", default=200)
RETRAIN_AFTER_OUTCOMES = cfg.positive_int("RETRAIN_AFTER_OUTCOMES", default=500)
RETRAIN_AUC_TOLERANCE = cfg.fraction("RETRAIN_AUC_TOLERANCE", default=0.005)
RETRAIN_MAX_ECE = cfg.fraction("RETRAIN_MAX_ECE", default=0.05)
RETRAIN_STALE_MINUTES = cfg.positive_int("RETRAIN_STALE_MINUTES", default=5)
_retrain_hour = cfg.env.str("RETRAIN_HOUR", default="2").strip()
if not _retrain_hour.isdecimal() or int(_retrain_hour) > 23:
    raise ImproperlyConfigured(f"RETRAIN_HOUR must be an hour from 0 to 23 (UTC), not {_retrain_hour!r}")
RETRAIN_HOUR = int(_retrain_hour)
CELERY_TIMEZONE = "UTC"
# Beat keeps its schedule in memory: the default file scheduler stores it with pickle, and a restart
# only means the next nightly run is computed from the clock again.
CELERY_BEAT_SCHEDULER = "celery.beat:Scheduler"
CELERY_BEAT_SCHEDULE = {
    "retrain-nightly": {"task": "ml.retrain_nightly", "schedule": crontab(hour=RETRAIN_HOUR, minute=0)},
    "sweep-training-jobs": {"task": "ml.training_jobs_sweep", "schedule": 60.0},
    "expire-scoring-jobs": {"task": "retention.scoring_jobs_expire", "schedule": 3600.0},
    "expire-former-customers": {"task": "retention.former_customers_expire", "schedule": crontab(hour=3, minute=30)},
    "expire-customer-accesses": {"task": "retention.accesses_expire", "schedule": crontab(hour=3, minute=45)},
}
# A batch-scoring job's request and result file (external ids and their scores) are removed this many days after it
# finished: a CRM fetches its result within hours, and customers' data is kept no longer than it serves.
SCORING_JOB_DAYS = cfg.positive_int("SCORING_JOB_DAYS", default=30)
# A former customer (their latest renewal result says they left, no contract of theirs is active) of whom nothing has
# been heard for this many days is erased by a nightly task, as GDPR's storage limitation asks. 0, the default,
# keeps them: how long to keep former customers' data is each provider's own decision (billing disputes, the
# law on records), so it is set, not guessed.
FORMER_CUSTOMER_DAYS = cfg.whole_number("FORMER_CUSTOMER_DAYS", default=0, maximum=36_500)
# Who opened or read which customer (retention.models.CustomerAccess) is kept this many days, then removed each night:
# long enough to look into a complaint of a customer or an agent's misuse found in an audit, no longer.
ACCESS_LOG_DAYS = cfg.positive_int("ACCESS_LOG_DAYS", default=365, maximum=36_500)

# Fairness report (ml.fairness): a metric is flagged when its smallest group value falls below this share of
# its largest (0.8 is the four-fifths rule); groups with fewer rows than the minimum are shown, never flagged.
FAIRNESS_RATIO_THRESHOLD = cfg.fraction("FAIRNESS_RATIO_THRESHOLD", default=0.8)
FAIRNESS_MIN_GROUP_SIZE = cfg.positive_int("FAIRNESS_MIN_GROUP_SIZE", default=30)

# While an escalation waits, the agent's panel asks this often whether someone decided it: the customer is on the line.
PANEL_REFRESH_SECONDS = cfg.positive_int("PANEL_REFRESH_SECONDS", default=10)

# A signed-in session lasts a working shift, not the two weeks of Django's default: call-centre desks are shared.
SESSION_COOKIE_AGE = cfg.positive_int("SESSION_HOURS", default=12) * 3600
# The panel may be framed by the CRM origins, so X-Frame-Options cannot be DENY; the Content-Security-Policy
# frame-ancestors header of agents_ui.middleware.FrameAncestorsMiddleware takes its place.
SILENCED_SYSTEM_CHECKS = ["security.W002"]

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    # Browsers that reached the site over HTTPS are told to keep to it. The redirect from HTTP is usually the
    # proxy's job, so it is opt-in here: on, with a proxy that ends TLS, BEHIND_TLS_PROXY=true must trust its
    # X-Forwarded-Proto header, or every request would look like plain HTTP and be redirected forever.
    SECURE_SSL_REDIRECT = cfg.boolean("SECURE_SSL_REDIRECT", default=False)
    SECURE_HSTS_SECONDS = cfg.positive_int("SECURE_HSTS_SECONDS", default=31_536_000)
    if cfg.boolean("BEHIND_TLS_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Each line says when (with its offset from UTC), how bad, which logger and which process: a traceback from one of
# several server processes is otherwise a bare message among the others' lines.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "lines": {
            "format": "%(asctime)s %(levelname)s %(name)s [pid %(process)d] %(message)s",
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "lines"}},
    "root": {"handlers": ["console"], "level": cfg.log_level("LOG_LEVEL", default="INFO")},
}
