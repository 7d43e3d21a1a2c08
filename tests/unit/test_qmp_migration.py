"""Waiting for a migration: done only once QEMU would accept ``cont``."""

from __future__ import annotations

import time
from typing import Any

from harness.machine.qmp import Qmp


class ScriptedQmp(Qmp):
    """Answers query-migrate and query-status from scripts, without a QEMU."""

    def __init__(self, migrate: list[str], runstate: list[str]) -> None:
        self.migrate, self.runstate = migrate, runstate
        self.asked: list[str] = []

    def cmd(self, name: str, **args: Any) -> Any:
        self.asked.append(name)
        script = self.migrate if name == "query-migrate" else self.runstate
        return {"status": script.pop(0) if len(script) > 1 else script[0]}


def test_a_completed_save_waits_until_qemu_left_finish_migrate() -> None:
    # QEMU 7.2 reports "completed" before its run state moves on; cont in between fails.
    qmp = ScriptedQmp(["active", "completed"], ["finish-migrate", "finish-migrate", "postmigrate"])
    assert qmp.wait_migration(time.monotonic() + 5)["status"] == "completed"
    assert qmp.runstate == ["postmigrate"] and qmp.asked.count("query-status") == 3


def test_a_completed_load_returns_at_once() -> None:
    qmp = ScriptedQmp(["completed"], ["paused"])
    assert qmp.wait_migration(time.monotonic() + 5)["status"] == "completed"
    assert qmp.asked == ["query-migrate", "query-status"]


def test_the_deadline_ends_the_wait_with_the_last_status() -> None:
    qmp = ScriptedQmp(["completed"], ["finish-migrate"])
    assert qmp.wait_migration(time.monotonic() + 0.05)["status"] == "completed"
