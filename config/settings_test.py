"""Fast settings for the test suite: state in a throw-away folder, cheap hashing, eager Celery."""

import os
import tempfile

os.environ.setdefault("DJANGO_ENV", "test")
os.environ["DATA_DIR"] = os.environ.get("TEST_DATA_DIR") or tempfile.mkdtemp(prefix="retention-test-")
# One thread per numeric library (OpenMP in XGBoost and scikit-learn, OpenBLAS in numpy and scipy), set
# before any of them loads. Test inputs are small and pytest-xdist runs a worker per core: a second thread
# spin-waits whenever the other core is busy, which made a 1 s benchmark test take 10 to 50 s under -n 2.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = "cache+memory://"
# Each test process counts throttles and sign-in attempts on its own, whatever CACHE_URL the machine sets: a cache
# shared between test processes would carry one test's counts into another's.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
