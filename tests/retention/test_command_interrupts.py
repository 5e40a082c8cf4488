"""Ctrl-C, SIGTERM and a full disk end the long commands with one line, and leave no half-written file."""

from __future__ import annotations

import errno
import io
import os
import signal

import pytest
from django.core.management import CommandError, call_command

from ml.management.commands.simulate_campaign import _write_whole
from retention.management.interrupts import stopped_in_one_line
from tests.factories import CustomerFactory


def interrupted(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_and_sigterm_end_in_one_line_saying_what_state_was_left():
    before = signal.getsignal(signal.SIGTERM)
    for stop in (interrupted, lambda: os.kill(os.getpid(), signal.SIGTERM)):
        with pytest.raises(CommandError) as stopped, stopped_in_one_line("nothing was changed"):
            stop()
        assert str(stopped.value) == "interrupted: nothing was changed"
    assert signal.getsignal(signal.SIGTERM) == before  # given back as it was


@pytest.mark.parametrize(
    ("command", "args", "step", "left"),
    [
        ("expire_former_customers", ["--days", "30"], "retention.management.commands.expire_former_customers."
         "former_customers_expire", "each customer erased so far is erased whole"),
        ("prepare_demo", [], "retention.management.commands.prepare_demo.call_command",
         "each step stores all of its data or none; run it again to finish"),
    ],
)  # fmt: skip
def test_a_long_command_stopped_midway_says_so_without_a_traceback(db, monkeypatch, command, args, step, left):
    monkeypatch.setattr(step, interrupted)

    with pytest.raises(CommandError, match=f"^interrupted: {left}"):
        call_command(command, *args, stdout=io.StringIO())


def test_an_export_the_disk_had_no_room_for_is_removed_so_it_can_be_written_again(db, tmp_path, monkeypatch):
    CustomerFactory(external_id="NL1234567")
    out = tmp_path / "export.json"
    real_fdopen = os.fdopen

    class FullDisk(io.StringIO):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(
        "retention.management.commands.export_customer.os.fdopen", lambda fd, mode: (os.close(fd), FullDisk())[1]
    )
    with pytest.raises(CommandError, match="No space left on device"):
        call_command("export_customer", "NL1234567", "--out", str(out), stdout=io.StringIO())
    assert not out.exists()

    monkeypatch.setattr("retention.management.commands.export_customer.os.fdopen", real_fdopen)
    call_command("export_customer", "NL1234567", "--out", str(out), stdout=io.StringIO())
    assert out.stat().st_size > 0


def test_a_campaign_report_the_disk_had_no_room_for_leaves_what_was_there(tmp_path, monkeypatch):
    report = tmp_path / "report.json"
    report.write_text("{}")

    def full(self, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("pathlib.Path.write_text", full)
    with pytest.raises(CommandError, match=f"cannot write --json {report}: No space left on device"):
        _write_whole(report, '{"rows": []}')
    monkeypatch.undo()

    assert report.read_text() == "{}"
    assert [item.name for item in tmp_path.iterdir()] == ["report.json"]
