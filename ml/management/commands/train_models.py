from __future__ import annotations

import os
import socket
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from tqdm import tqdm

from ml.artifacts import ArtifactError
from ml.jobs import (
    TrainingBusy,
    command_jobs_sweep,
    command_worker_name,
    trainable_kinds,
    training_job_request,
    training_job_run,
    training_jobs_sweep,
)
from ml.models import ModelVersion, TrainingJob
from ml.schema import SchemaMismatch
from ml.training import STAGES
from retention.management import arguments
from retention.management.interrupts import sigterm_as_interrupt


class Command(BaseCommand):
    help = (
        "Retrain on the labelled history through the same job, lock and judgement as the worker: each challenger "
        "is compared with its champion on the same holdout and promoted only when it is not worse and is "
        "calibrated; the first model of a kind is promoted."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=arguments.seed, default=0)
        parser.add_argument(
            "--kind", action="append", choices=trainable_kinds(), help="Retrain only this kind (repeatable)."
        )
        parser.add_argument(
            "--no-progress",
            action="store_true",
            help="No progress bar on stderr (as score_customers), e.g. when the output goes to a log file.",
        )

    def handle(self, *args, seed: int, kind: list[str] | None, no_progress: bool, **options):
        started = time.perf_counter()
        # What the worker's beat does every minute, and more: this command may run where no worker does.
        training_jobs_sweep()
        command_jobs_sweep(host=socket.gethostname(), process_alive=_alive)
        try:
            job = training_job_request(trigger=TrainingJob.Trigger.COMMAND, kinds=kind, seed=seed, enqueue=False)
        except TrainingBusy as busy:
            raise CommandError(_busy_message(busy)) from busy
        with ProgressBar(self.stderr, verbosity=0 if no_progress else options["verbosity"]) as bar:
            try:
                # SIGTERM (a service manager, `kill`) stops the job as Ctrl-C does: cancelled, not left running.
                with sigterm_as_interrupt():
                    job = training_job_run(job_id=job.pk, worker=_this_process(), on_progress=bar.update)
            except (ValueError, SchemaMismatch) as error:
                raise CommandError(str(error)) from error
            except (ArtifactError, OSError) as error:
                raise CommandError(_failed_message(job.pk, error)) from error
            except KeyboardInterrupt:
                stopped = TrainingJob.objects.get(pk=job.pk)
                raise CommandError(f"interrupted: {stopped.error}") from None
        if job.status == TrainingJob.Status.REFUSED:
            raise CommandError(job.error)
        for name, result in job.results.items():
            self._report(name, result, time.perf_counter() - started)

    def _report(self, kind: str, result: dict, seconds: float) -> None:
        if result["outcome"] == "refused":
            self.stdout.write(f"refused: {result['reason']}")
            return
        version = ModelVersion.objects.get(kind=kind, version=result["version"])
        metrics = version.metrics
        self.stdout.write(
            f"{version.label} ({version.status}) trained on {version.training_rows} labelled outcomes "
            f"in {seconds:.1f} s; holdout ({metrics['holdout']}, {metrics['rows']} rows): "
            f"ROC AUC {metrics['roc_auc']:.3f}, PR AUC {metrics['pr_auc']:.3f}, Brier {metrics['brier']:.3f}, "
            f"ECE {metrics['ece']:.3f}, lift@10% {metrics['lift_top10']:.2f}"
        )
        self.stdout.write(f"  {result['outcome']}: {result['reason']}")


def _this_process() -> str:
    return command_worker_name(host=socket.gethostname(), pid=os.getpid())


def _busy_message(busy: TrainingBusy) -> str:
    if busy.job.status == TrainingJob.Status.QUEUED:
        return (
            f"{busy}: it waits for a worker; start one (`make run` does) or cancel the job on the models page "
            "(Review, Models)"
        )
    return (
        f"{busy} on {busy.job.worker or 'a worker'}: wait for it to finish (the models page shows its progress); "
        f"if its process is gone, the job is marked failed after {settings.RETRAIN_STALE_MINUTES} minutes without "
        "a heartbeat, and this command can run again then"
    )


def _failed_message(job_id: int, error: ArtifactError | OSError) -> str:
    """The job is marked failed by now (training_job_run does so for any error); the kind it was retraining was
    neither registered nor promoted, as that is one transaction at the end of each kind."""
    job = TrainingJob.objects.get(pk=job_id)
    problem = _os_problem(error) if isinstance(error, OSError) else str(error)
    return f"training job {job.pk} failed retraining {job.stage_kind or ', '.join(job.kinds)}: {problem}"


def _os_problem(error: OSError) -> str:
    """The reason and the file, e.g. `Permission denied: /data/models/churn-v3-…`, without Python's errno."""
    if error.filename is None:
        return str(error)
    return f"{error.strerror or error}: {error.filename}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 sends nothing: it only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


class ProgressBar:
    """A tqdm bar on the command's stderr showing the job's stage and percent; silent at verbosity 0."""

    def __init__(self, stream: OutputWrapper, *, verbosity: int) -> None:
        self.stream = stream
        self.bar = tqdm(
            total=100,
            file=_RawStream(stream),
            disable=verbosity == 0,
            bar_format="{desc:<40} {percentage:3.0f}%|{bar}| {elapsed}",
            dynamic_ncols=True,
        )

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info) -> None:
        self.bar.close()

    def update(self, kind: str, stage: str, percent: int) -> None:
        self.bar.set_description_str(f"{kind}: {STAGES.get(stage, stage)}", refresh=False)
        self.bar.update(max(percent - self.bar.n, 0))
        self.bar.refresh()


class _RawStream:
    """tqdm redraws its line with carriage returns: write without the newline and colour OutputWrapper adds."""

    def __init__(self, wrapper: OutputWrapper) -> None:
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, style_func=str, ending="")

    def flush(self) -> None:
        self.wrapper.flush()
