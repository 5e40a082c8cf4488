"""Two requests at the same moment, on PostgreSQL, where row locks between connections can be tried.

`ReadTogether.after(read)` wraps the function a request reads the log with: once it has read, it waits until the
other request has read too (which only a missing lock lets it do) or waits for this one's lock. Waiting for
either, not for a fixed time, costs nothing when the lock works.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import connection

# Reached only when the other request neither reads the log nor waits for the lock: something else broke.
OTHER_REQUEST_TIMEOUT_SECONDS = 10.0


def another_request_waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid())"
        )
        return cursor.fetchone()[0]


class ReadTogether:
    def __init__(self) -> None:
        self._turns = threading.Condition()
        self._have_read = 0

    def after(self, read: Callable) -> Callable:
        def read_then_wait_for_the_other(*args, **kwargs):
            answer = read(*args, **kwargs)
            deadline = time.monotonic() + OTHER_REQUEST_TIMEOUT_SECONDS
            with self._turns:
                self._have_read += 1
                self._turns.notify_all()
                while self._have_read < 2 and not another_request_waits_for_a_lock() and time.monotonic() < deadline:
                    self._turns.wait(timeout=0.01)
            return answer

        return read_then_wait_for_the_other


def run_at_once(*requests: Callable[[], str]) -> list[str]:
    """Each request in a thread of its own, with a connection of its own: what each returned, or its refusal."""
    outcomes: list[str] = [""] * len(requests)

    def run(index: int) -> None:
        try:
            outcomes[index] = requests[index]()
        except ValidationError as error:
            outcomes[index] = error.messages[0]
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
