"""How a step of a scenario ends the iteration: the failure is recorded, then raised."""

from __future__ import annotations

from typing import NoReturn

from harness.reading.verdict import Failure


class ScenarioFailed(Exception):
    """Ends an iteration early: the driver already failed, going on would prove nothing."""


def stop(failures: list[Failure], failure: Failure) -> NoReturn:
    """Record ``failure`` among ``failures`` and end the iteration."""
    failures.append(failure)
    raise ScenarioFailed(failure.message)
