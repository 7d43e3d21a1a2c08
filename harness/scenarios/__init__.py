"""The recovery scenarios; importing this package registers them by their repro names."""

from harness.scenarios import devices, injection, pci, power, resets  # noqa: F401
