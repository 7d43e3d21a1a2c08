"""Whether the harness may overwrite a disk on a real machine, decided before it writes a byte.

A scenario writes the whole namespace, so anything on it that looks like someone's data, or in
use by the running system, stops the run. What is merely present (a partition table, a file
system nobody mounted) may be overwritten once the user names the device again in
``--destroy-data-on``; what is in use (mounted, swap) never. Pure logic over what
:func:`probe_command` printed on the machine: the caller runs it.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

from harness.errors import BadInput, HarnessError

SECTIONS = ("lsblk", "wipefs", "swaps", "controllers", "root", "wwids")
_NAMESPACE = re.compile(r"nvme[0-9]+n[0-9]+", re.ASCII)
_CONTROLLER = re.compile(r"nvme[0-9]+", re.ASCII)
# wipefs types that are partition tables, not contents (PMBR: GPT's protective MBR).
_TABLES = {"gpt": "gpt", "PMBR": "gpt", "dos": "dos", "mac": "mac", "bsd": "bsd", "sun": "sun",
           "sgi": "sgi", "atari": "atari", "aix": "aix", "solaris": "solaris",
           "unixware": "unixware", "minix": "minix", "ultrix": "ultrix"}
# Signatures of something other than a file system: said "an X signature", not "file system".
_NOT_FS = {"swap", "crypto_LUKS", "bcache", "BitLocker", "DM_integrity", "DM_verity_hash",
           "DM_snapshot_cow", "VMFS_volume_member"}
_SWAP_MOUNT = "[SWAP]"  # lsblk's MOUNTPOINT for an active swap device

# Sections marked off so that one tool printing nothing (wipefs on a blank disk) or failing
# (a missing device) leaves the others readable. POSIX sh: the login shell may not be bash.
_PROBE = """\
echo '--- lsblk'; lsblk --json --bytes --output NAME,PATH,TYPE,FSTYPE,PTTYPE,MOUNTPOINT
echo '--- wipefs'; wipefs --no-act --json {device} 2>/dev/null
echo '--- swaps'; cat /proc/swaps 2>/dev/null
echo '--- controllers'
for b in /sys/block/nvme*; do
  [ -e "$b" ] || continue
  d=$(readlink -f "$b/device"); c=${{d##*/}}
  case $c in
    nvme[0-9]*) ;;
    *) c=''
       for p in "$b"/device/nvme*; do
         n=${{p##*/}}; n=${{n#nvme}}
         case $n in ''|*[!0-9]*) continue ;; esac
         c="$c nvme$n"
       done
       c=${{c# }} ;;
  esac
  echo "${{b##*/}} $c"
done
echo '--- root'; findmnt -n -o SOURCE / || true
echo '--- wwids'
for b in /sys/block/nvme*n*; do
  case ${{b##*/}} in *c*) continue ;; esac
  [ -r "$b/wwid" ] && echo "${{b##*/}} $(cat "$b/wwid")"
done
true
"""


@dataclass(frozen=True)
class Node:
    """One block device as lsblk nests them: partitions and holders (dm, md) under it."""

    name: str
    path: str
    type: str
    fstype: str | None
    pttype: str | None
    mountpoints: tuple[str, ...]
    children: tuple[Node, ...]

    def walk(self) -> list[Node]:
        """This node and everything under it, depth first."""
        return [self, *(n for child in self.children for n in child.walk())]


@dataclass(frozen=True)
class Probe:
    """What the machine reported, parsed."""

    devices: tuple[Node, ...]  # lsblk's top level
    signatures: tuple[str, ...]  # wipefs types on the device itself
    swaps: tuple[str, ...]  # /proc/swaps' file names
    controllers: dict[str, tuple[str, ...]]  # /sys/block nvme name -> its controllers
    root: str | None  # findmnt's SOURCE of /, a btrfs subvolume's [/path] cut off
    # /sys/block nvme name -> its namespace's wwid: one namespace has a block device per
    # controller that reaches it when Linux's multipath is off (a dual-port drive)
    wwids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """A reason not to write to the device; ``overridable``: --destroy-data-on may overrule."""

    what: str
    overridable: bool


def probe_command(device: str) -> str:
    """The shell command (run as root) whose output :func:`parse_probe` reads."""
    return _PROBE.format(device=shlex.quote(device))


def parse_probe(text: str) -> Probe:
    """The sections of :func:`probe_command`'s output; HarnessError if one is missing or bad."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("--- ") and line[4:] in SECTIONS:
            current = sections.setdefault(line[4:], [])
        elif current is not None:
            current.append(line)
    missing = [s for s in SECTIONS if s not in sections]
    if missing:
        raise HarnessError(f"the device probe printed no {', '.join(missing)} section")
    try:
        tree = json.loads("\n".join(sections["lsblk"]))
        devices = tuple(_node(d) for d in tree["blockdevices"])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise HarnessError(f"the device probe's lsblk output is not lsblk's JSON: {e}") from None
    wipefs = "\n".join(sections["wipefs"]).strip()
    try:  # an old wipefs prints nothing at all for a blank device
        found = json.loads(wipefs)["signatures"] if wipefs else []
        signatures = tuple(str(s["type"]) for s in found)
    except (ValueError, KeyError, TypeError) as e:
        raise HarnessError(f"the device probe's wipefs output is not wipefs's JSON: {e}") from None
    swaps = tuple(line.split()[0] for line in sections["swaps"][1:] if line.strip())
    controllers = {}
    for line in sections["controllers"]:
        if line.strip():
            name, *ctrls = line.split()
            controllers[name] = tuple(ctrls)
    root = next((line.strip() for line in sections["root"] if line.strip()), None)
    wwids = dict(line.split(maxsplit=1) for line in sections["wwids"] if len(line.split()) > 1)
    return Probe(devices, signatures, swaps, controllers, root and root.split("[")[0], wwids)


def _node(d: dict[str, object]) -> Node:
    def text(key: str) -> str | None:
        value = d.get(key)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{key} is {value!r}")
        return value

    # MOUNTPOINTS (a list) where a newer lsblk was asked for it; MOUNTPOINT is what we ask.
    many = d.get("mountpoints")
    mounts = (tuple(m for m in many if isinstance(m, str)) if isinstance(many, list)
              else tuple(m for m in [text("mountpoint")] if m))
    children = d.get("children", [])
    if not isinstance(children, list):
        raise TypeError(f"children is {children!r}")
    name, type_ = text("name"), text("type")
    if not name or not type_:
        raise KeyError("name and type")
    return Node(name=name, path=text("path") or f"/dev/{name}",
                type=type_, fstype=text("fstype"), pttype=text("pttype"),
                mountpoints=mounts, children=tuple(_node(c) for c in children))


def findings(device: str, probe: Probe) -> list[Finding]:
    """Every reason not to overwrite ``device``, in a stable order, each said once."""
    node = next((n for top in probe.devices for n in top.walk() if n.path == device), None)
    if node is None:
        return [Finding("not present", overridable=False)]
    found: list[Finding] = []
    if node.type != "disk" or not _NAMESPACE.fullmatch(node.name):
        found.append(Finding(f"not an NVMe namespace (lsblk: {node.name}, type {node.type})",
                             overridable=False))
    # what is on the namespace through another controller's block device is on it too
    wwid = probe.wwids.get(node.name)
    paths = [node, *(top for top in probe.devices
                     if top.name != node.name and wwid and probe.wwids.get(top.name) == wwid)]
    subtree = [n for path in paths for n in path.walk()]
    swapping = False
    for n in subtree:
        for mount in n.mountpoints:
            if mount == _SWAP_MOUNT:
                swapping = True
            else:
                found.append(Finding(f"mounted at {mount} ({n.name})", overridable=False))
    if swapping or any(s in probe.swaps for n in subtree for s in (n.path, f"/dev/{n.name}")):
        found.append(Finding("swap in use", overridable=False))
    for n in subtree:
        if n.pttype:
            found.append(Finding(f"a {_TABLES.get(n.pttype, n.pttype)} partition table", True))
    for sig in probe.signatures:
        found.append(Finding(_signature(sig), overridable=True))
    for n in subtree:
        if n.fstype:
            found.append(Finding(_signature(n.fstype), overridable=True))
    for n in subtree:
        if n in paths:
            continue
        kind = "partition" if n.type == "part" else f"{n.type} holder"
        found.append(Finding(f"{kind} {n.name}", overridable=True))
    found += _root_neighbours(node.name, probe)
    unique: dict[str, Finding] = {}
    for f in found:
        unique.setdefault(f.what, f)
    return list(unique.values())


def _signature(kind: str) -> str:
    if kind in _TABLES:
        return f"a {_TABLES[kind]} partition table"
    what = "signature" if kind in _NOT_FS or kind.endswith("_member") else "file system signature"
    return f"{_article(kind)} {kind} {what}"


def _article(word: str) -> str:
    # Said as letters (LVM2, XFS, ntfs) or as a word (ext4, swap): "an" before a vowel sound.
    spelled = word[:1].isupper() or word in {"xfs", "ntfs", "hfs", "hfsplus", "nilfs2"}
    return "an" if word[:1].lower() in ("aeiou" if not spelled else "aefhilmnorsx") else "a"


def _root_neighbours(name: str, probe: Probe) -> list[Finding]:
    """The root file system on another namespace of the device's controller: a controller
    reset or a dead controller, what the scenarios cause, takes the machine's root with it."""
    mine = set(probe.controllers.get(name, ()))
    found = []
    for top in probe.devices:
        for other in top.walk():
            shared = sorted(mine & set(probe.controllers.get(other.name, ())))
            if other.name == name or not shared:
                continue
            holding = [n for n in other.walk() if "/" in n.mountpoints
                       or (probe.root is not None and probe.root in (n.path, f"/dev/{n.name}"))]
            if holding:
                source = probe.root if probe.root in (holding[0].path, f"/dev/{holding[0].name}") \
                    else holding[0].path
                ctrl = (f"its controller {shared[0]} also holds" if len(shared) == 1
                        else f"its controllers {', '.join(shared)} also hold")
                found.append(Finding(f"{ctrl} the root file system ({source} on {other.name})",
                                     overridable=True))
    return found


def nvme_in_use(probe: Probe) -> list[str]:
    """The NVMe namespaces the machine uses (mounted, or swap: anywhere in their subtrees):
    while one is, the NVMe driver cannot be swapped for another build (unloading it would
    take them away)."""
    used = []
    for top in probe.devices:
        for node in top.walk():
            if not _NAMESPACE.fullmatch(node.name):
                continue
            subtree = node.walk()
            if any(n.mountpoints for n in subtree) or any(
                    s in probe.swaps for n in subtree for s in (n.path, f"/dev/{n.name}")):
                used.append(node.name)
    return used


def check(device: str, probe: Probe, destroy_data_on: str | None, where: str) -> list[Finding]:
    """The findings ``--destroy-data-on`` overrules, for the caller to say; BadInput when
    the device must not be written, naming every reason."""
    if destroy_data_on is not None and destroy_data_on != device:
        raise BadInput(f"--destroy-data-on names {destroy_data_on}, "
                       f"but the device under test is {device}")
    found = findings(device, probe)
    never = [f.what for f in found if not f.overridable]
    if never:
        raise BadInput(f"refusing {device} on {where}: {'; '.join(never)}")
    if found and destroy_data_on != device:
        raise BadInput(f"refusing {device} on {where}: {'; '.join(f.what for f in found)}; "
                       f"pass --destroy-data-on {device} to let the harness overwrite it")
    return found
