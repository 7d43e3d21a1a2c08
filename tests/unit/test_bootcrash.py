"""Which crashed boots are started again: only TCG's stale-translation int3, before any module."""

from __future__ import annotations

from harness.machine.bootcrash import restartable, stale_translation, trapped_byte
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


INT3_MIDRUN = log("oops-int3-tcg-midrun-6.12.log")


def test_an_int3_trap_on_a_site_that_holds_no_int3_is_a_stale_translation() -> None:
    oops = scan(INT3_MIDRUN)[0]
    assert trapped_byte(oops) == "0f"  # the jump label's 5-byte NOP, 0f 1f 44 00 00, again
    why = stale_translation(oops, "tcg")
    assert why is not None and "int3 in do_idle" in why and "tested nothing" in why
    # also before any module: the boot's crash is the same
    assert stale_translation(scan(INT3_BOOT)[0], "tcg") is not None


def test_an_int3_still_in_the_code_or_under_kvm_is_the_kernels() -> None:
    oops = scan(INT3_MIDRUN)[0]
    assert stale_translation(oops, "kvm") is None
    still = INT3_MIDRUN.replace("00 00 0f <1f> 44", "00 00 cc <1f> 44")
    assert stale_translation(scan(still)[0], "tcg") is None
    # a report without its Code: line proves nothing
    bare = "\n".join(ln for ln in INT3_MIDRUN.splitlines() if "Code:" not in ln)
    assert stale_translation(scan(bare)[0], "tcg") is None
    for name in ("oops-null-deref-then-panic-console-6.1.log", "panic-sysrq-6.1.log"):
        assert stale_translation(scan(log(name))[0], "tcg") is None


def test_an_iteration_whose_guest_crashed_in_a_stale_translation_tested_nothing() -> None:
    from harness.reading.verdict import Failure, FailureKind
    from harness.recovery.runner import crashed_in_translation
    oopses = scan(INT3_MIDRUN)
    crash = [Failure(FailureKind.OOPS, o.title, code="oops-" + o.kind) for o in oopses]
    gone = Failure(FailureKind.HANG, "the guest stopped answering", code="guest-unreachable")
    why = crashed_in_translation(oopses, [*crash, gone], "tcg")
    assert why is not None and "tested nothing" in why
    # a failure before the crash is the driver's finding, reported as ever
    lost = Failure(FailureKind.LOST_DATA, "verify-only pass: EILSEQ", code="lost-data")
    assert crashed_in_translation(oopses, [lost, *crash], "tcg") is None
    stuck = Failure(FailureKind.HANG, "no write completed", code="io-stuck")
    assert crashed_in_translation(oopses, [stuck, *crash], "tcg") is None
    assert crashed_in_translation(oopses, crash, "kvm") is None
    assert crashed_in_translation([], [], "tcg") is None
