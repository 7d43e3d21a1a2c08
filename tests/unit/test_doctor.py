from harness.machine.doctor import Check, advice, fixes, ready


def test_one_apt_line_for_every_missing_package():
    found = [Check("qemu", False, "missing", ("qemu-system-x86", "qemu-utils")),
             Check("qemu-img", False, "missing", ("qemu-utils",)),
             Check("depmod", True, "found")]
    (command,) = fixes(found)
    assert command.endswith("--no-install-recommends qemu-system-x86 qemu-utils")
    assert not ready(found)


def test_a_failed_check_without_a_package_is_advice_never_a_command():
    found = [Check("free disk", False, "1.0 GiB free", advice="free disk space"),
             Check("depmod", True, "found")]
    assert fixes(found) == []
    assert advice(found) == ["free disk: free disk space"]
    assert not ready(found), "a host short of disk is not ready"


def test_ready_when_everything_passes():
    found = [Check("depmod", True, "found"), Check("accelerator", True, "tcg")]
    assert ready(found) and fixes(found) == [] and advice(found) == []
