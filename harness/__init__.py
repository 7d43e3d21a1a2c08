"""QEMU-backed hardware-in-the-loop test harness for the Linux NVMe driver."""

__version__ = "0.1.0"
