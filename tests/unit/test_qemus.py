"""``--qemu debian:SUITE``: which specs are fetched, which refused, which passed through."""

import pytest

from harness.build import qemus
from harness.errors import BadInput
from harness.progress import Progress


def test_a_binary_name_or_path_is_used_as_given() -> None:
    assert qemus.binary("qemu-system-x86_64", Progress()) == "qemu-system-x86_64"
    assert qemus.binary("/opt/qemu/bin/qemu-system-x86_64", Progress()) == \
        "/opt/qemu/bin/qemu-system-x86_64"


def test_an_unknown_suite_is_refused_with_the_known_ones() -> None:
    with pytest.raises(BadInput, match=r"unknown QEMU 'debian:sid': choose one of "
                                       r"debian:bookworm, debian:trixie"):
        qemus.validate("debian:sid")


def test_known_suites_are_accepted() -> None:
    for suite in qemus.SUITES:
        qemus.validate(f"debian:{suite}")
    qemus.validate("qemu-system-x86_64")
