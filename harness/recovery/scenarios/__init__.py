"""The recovery scenarios; importing this package registers them by their repro names."""

from harness.errors import HarnessError
from harness.recovery.registry import REGISTRY, Scenario
from harness.recovery.scenarios import (  # noqa: F401
    aer,
    cpus,
    devices,
    injection,
    namespaces,
    pci,
    power,
    queues,
    resets,
    silent,
)


def get(name: str) -> Scenario:
    if name not in REGISTRY:
        raise HarnessError(f"unknown scenario {name!r}; valid: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def names() -> list[str]:
    return sorted(REGISTRY)
