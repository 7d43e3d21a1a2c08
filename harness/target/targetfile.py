"""A target file: a lab machine and the namespace the harness may use on it, kept together,
so that a lab hands out one file per machine (``--target lab7.toml``)::

    target = "ssh://root@lab7"
    device = "/dev/nvme1n1"
    power-cmd = "ipmitool -I lanplus -H lab7-bmc -U lab -f /etc/lab/bmc chassis power cycle"
    # destroy-data-on = "/dev/nvme1n1"

An option given on the command line wins over the file's. Read strictly, as the options are:
an unknown key or a value of another type stops the run.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from harness.errors import BadInput

SUFFIX = ".toml"
KEYS = ("target", "device", "destroy-data-on", "power-cmd")


def is_target_file(target: str) -> bool:
    """Whether ``--target`` names a file rather than an address."""
    return not target.startswith("ssh://") and target.endswith(SUFFIX)


def read(path: Path) -> dict[str, str]:
    """The file's keys and values, each a string; ``target`` is always there."""
    def bad(why: str) -> BadInput:
        return BadInput(f"--target {path}: {why}")

    try:
        data = tomllib.loads(path.expanduser().read_text())
    except OSError as exc:
        raise bad(f"cannot read it ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise bad(f"not TOML ({exc})") from None
    if unknown := [key for key in data if key not in KEYS]:
        raise bad(f"unknown key {unknown[0]!r} (known: {', '.join(KEYS)})")
    if wrong := [key for key, value in data.items() if not isinstance(value, str)]:
        raise bad(f"{wrong[0]} must be a string in quotes")
    if "target" not in data:
        raise bad('no target = "ssh://USER@HOST[:PORT]"')
    return dict(data)
