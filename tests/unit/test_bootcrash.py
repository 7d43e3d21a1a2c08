"""Which crashed boots are started again: only TCG's stale-translation int3, before any module."""

from __future__ import annotations

from harness.machine.bootcrash import restartable
from harness.reading.oops import scan
from tests.unit.test_oops_corpus import log

INT3_BOOT = log("oops-int3-tcg-boot-6.12.log")


def test_an_int3_trap_before_any_module_under_tcg_is_started_again() -> None:
    why = restartable(scan(INT3_BOOT), "tcg")
    assert why is not None and "int3 in sched_clock_cpu" in why


def test_under_kvm_the_same_crash_is_the_kernels() -> None:
    assert restartable(scan(INT3_BOOT), "kvm") is None


def test_with_the_driver_loaded_it_may_be_the_drivers() -> None:
    text = INT3_BOOT.replace("Modules linked in:", "Modules linked in: nvme nvme_core")
    assert restartable(scan(text), "tcg") is None


def test_another_crash_first_is_reported() -> None:
    for name in ("oops-null-deref-then-panic-console-6.1.log", "panic-sysrq-6.1.log"):
        assert restartable(scan(log(name)), "tcg") is None
    assert restartable([], "tcg") is None
