"""Ctrl-C and SIGTERM end a command with one line saying what state it left, not a traceback, and no half file."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from django.core.management import CommandError


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a service manager stopping the command, `kill`) ends it as Ctrl-C does: what is being written is
    rolled back or removed on the way out, instead of the process dying without a word."""

    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        # Only the main thread may take a signal (a command called from a worker's thread leaves it be).
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def stopped_in_one_line(left: str) -> Iterator[None]:
    """Ctrl-C or SIGTERM inside ends the command with "interrupted: <left>", `left` saying what state it left."""
    try:
        with sigterm_as_interrupt():
            yield
    except KeyboardInterrupt:
        raise CommandError(f"interrupted: {left}") from None


def partial_beside(out: Path) -> Path:
    """The hidden file a command writes before putting it in `out`'s place whole. One per process: two runs
    writing the same `out` at once must not write into one file."""
    return out.with_name(f".{out.name}.{os.getpid()}.partial")
