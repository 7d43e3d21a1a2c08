"""The recovery scenarios; importing this package registers them by their repro names."""

from harness.scenarios import (  # noqa: F401
    devices,
    injection,
    namespaces,
    pci,
    power,
    resets,
    silent,
)
