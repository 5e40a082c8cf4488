"""A real Celery worker process beside the test, sharing its database, model folder and broker.

The worker sees what the test commits: a file SQLite database in the test's temporary folder
(pytest-django's in-memory database is invisible to another process), or the PostgreSQL test
database when DATABASE_URL points the suite there. The broker is Redis where one runs on
127.0.0.1:6379, else the embedded filesystem broker in the temporary folder; either way the test
has a queue of its own, so several runs on one machine never take each other's tasks.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import kombu.pools
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections
from django.db.utils import load_backend

from config.celery import app
from config.env import embedded_broker_options
from ml.registry import champions

BASE_DIR = Path(settings.BASE_DIR)
REDIS = ("127.0.0.1", 6379)
REDIS_DB = 13
WORKER_START_SECONDS = 60
CELERY_ENVIRON = ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")


def chosen_broker() -> str:
    """Redis where it runs, else the embedded broker; TEST_BROKER=filesystem or redis insists on one."""
    wanted = os.environ.get("TEST_BROKER", "")
    if wanted == "filesystem" or (not wanted and not redis_runs()):
        return "filesystem://"
    if not redis_runs():
        pytest.skip(f"TEST_BROKER={wanted} but no Redis answers on {REDIS[0]}:{REDIS[1]}")
    return f"redis://{REDIS[0]}:{REDIS[1]}/{REDIS_DB}"


def redis_runs() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path

    def kill(self) -> None:
        """SIGKILL to the worker's whole process group: nothing gets to clean up."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class LearningLoop:
    """The shared state of a test and its worker processes."""

    data_dir: Path
    env: dict[str, str]
    queue: str
    broker: str
    workers: list[Worker] = field(default_factory=list)

    def start_worker(self, name: str = "loop") -> Worker:
        """A worker under a fixed node name (a restart reuses it), ready to take tasks."""
        log = self.data_dir / f"worker-{len(self.workers)}.log"
        command = [
            sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "INFO",
            "--hostname", f"{name}-{self.queue}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=BASE_DIR, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        worker = Worker(process=process, log=log)
        self.workers.append(worker)
        wait_for(lambda: " ready." in log.read_text(errors="replace"), WORKER_START_SECONDS, worker=worker)
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


def wait_for(condition: Callable[[], object], seconds: float, *, worker: Worker | None = None, every: float = 0.1):
    """Poll until `condition()` is true; fail with the worker's log when it never becomes so."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := condition():
            return result
        if worker is not None and worker.process.poll() is not None:
            pytest.fail(f"the worker exited with {worker.process.returncode}:\n{worker.log.read_text()[-4000:]}")
        time.sleep(every)
    log = worker.log.read_text()[-4000:] if worker else ""
    pytest.fail(f"gave up after {seconds} s waiting for {condition.__doc__ or condition}\n{log}")


@pytest.fixture
def shared_database(tmp_path) -> Iterator[str]:
    """The database URL the worker uses to see what this test commits (the test needs django_db(transaction=True))."""
    if connection.vendor == "postgresql":
        yield _postgres_url(connection.settings_dict)
        return
    if connection.vendor != "sqlite":
        pytest.skip(f"the worker cannot share a {connection.vendor} test database")
    path = tmp_path / "db.sqlite3"
    original = connections["default"]
    file_settings = {**original.settings_dict, "NAME": str(path)}
    swapped = load_backend(file_settings["ENGINE"]).DatabaseWrapper(file_settings, "default")
    # The in-memory test database lives only while its connection does: keep it aside, untouched.
    connections["default"] = swapped
    try:
        call_command("migrate", verbosity=0)
        yield f"sqlite:///{path}"
    finally:
        swapped.close()
        connections["default"] = original


def _postgres_url(database: dict) -> str:
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database.get("PASSWORD") else "")
    return f"postgres://{credentials}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{database['NAME']}"


@pytest.fixture
def learning_loop(tmp_path, shared_database, settings) -> Iterator[LearningLoop]:
    """Worker environment, broker and model folder shared with this test; Celery here publishes, not runs."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    broker = chosen_broker()
    queue = f"it-{uuid.uuid4().hex[:12]}"
    settings.MODEL_DIR = data_dir / "models"
    settings.MODEL_DIR.mkdir()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("CELERY_", "RETRAIN_"))},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_ENV": "test",
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": shared_database,
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "PYTHONUNBUFFERED": "1",
    }
    options = embedded_broker_options(data_dir) if broker == "filesystem://" else {}
    loop = LearningLoop(data_dir=data_dir, env=env, queue=queue, broker=broker)
    champions.clear()
    with _publishing_to(broker, options, queue):
        try:
            yield loop
        finally:
            loop.stop()
    champions.clear()


class _publishing_to:
    """Point this process's Celery at the test's broker and queue, then back to eager in-process tasks."""

    def __init__(self, broker: str, options: dict, queue: str) -> None:
        self.values = {
            "task_always_eager": False,
            "broker_url": broker,
            "broker_transport_options": options,
            "task_default_queue": queue,
        }
        self.saved: dict = {}

    def __enter__(self) -> None:
        self.saved = {name: app.conf[name] for name in self.values}
        # Celery reads these variables before its configuration (CI sets them for the suite's own runs).
        self.saved_environ = {name: os.environ.pop(name) for name in CELERY_ENVIRON if name in os.environ}
        app.conf.update(self.values)
        _forget_broker_connections()

    def __exit__(self, *exc_info) -> None:
        os.environ.update(self.saved_environ)
        app.conf.update(self.saved)
        _forget_broker_connections()


def _forget_broker_connections() -> None:
    """Celery keeps the queues and routes it made on first use, and kombu keeps connection and producer
    pools per broker; drop them all so the next publish builds them from the configuration as it is now."""
    kombu.pools.reset()
    app.__dict__.pop("amqp", None)
    app._pool = None
