import pytest

from harness.errors import BadInput
from harness.machine.topology import Namespace, Topology, format_size, parse_size


def test_parse_size_units():
    assert parse_size("1G") == 1 << 30
    assert parse_size("256M") == 256 << 20
    assert parse_size("4096") == 4096
    assert parse_size("2GiB") == 2 << 30
    assert format_size(256 << 20) == "256M"
    with pytest.raises(BadInput, match="bad size 'lots'"):
        parse_size("lots")


def test_default_topology():
    t = Topology()
    assert len(t.controllers) == 1
    assert t.controllers[0].namespaces == (Namespace(1 << 30, 512),)
    assert t.cpus == 1 and t.memory == 1 << 30


def test_build_from_marker_keywords():
    t = Topology.build(controllers=2, namespaces=["256M", "128M:4096"], io_queues=2, cpus=2,
                       memory="768M")
    assert len(t.controllers) == 2
    assert t.controllers[1].namespaces == (Namespace(256 << 20, 512), Namespace(128 << 20, 4096))
    assert t.controllers[0].io_queues == 2
    assert t.memory == 768 << 20


def test_parse_cli_form_equals_marker_form():
    a = Topology.parse("controllers=2,namespaces=256M+128M:4096,io_queues=2,cpus=2,memory=768M")
    b = Topology.build(controllers=2, namespaces=["256M", "128M:4096"], io_queues=2, cpus=2,
                       memory="768M")
    assert a == b and hash(a) == hash(b) and str(a) == str(b)


@pytest.mark.parametrize("spec, message", [
    ("controllers=0", "controllers must be a positive integer"),
    ("controllers=x", "controllers must be an integer"),
    ("controllers=9", "controllers must be between 1 and 8"),
    ("namespaces=1G:1000", "block size 1000 is not one of 512, 4096"),
    ("namespaces=1000", "a controller needs 1 to 16 namespaces"),
    ("namespaces=1M+1G:4096+3M:4096+5000", "must be at least 1M"),
    ("memory=64M", "below the minimum 256M"),
    ("cpus=0", "cpus must be between"),
    ("io_queues=65", "io_queues must be between"),
    ("colour=blue", "bad topology item 'colour=blue'"),
    ("controllers", "expected KEY=VALUE"),
    ("namespaces=1G+512M:detached", "a detached namespace needs subsystem=on"),
    ("subsystem=maybe", "subsystem must be on or off"),
    ("link_speed=3", "link_speed must be one of 2.5, 5, 8, 16 \\(GT/s\\), not '3'"),
    ("namespaces=1G:512:attached", "expected SIZE\\[:BLOCKSIZE\\]\\[:detached\\]"),
])
def test_bad_topologies_name_the_culprit(spec, message):
    with pytest.raises(BadInput, match=message):
        Topology.parse(spec)


def test_kernel_args_keep_their_commas():
    t = Topology.parse("kernel_args=module_blacklist=virtio_net,virtio_console nvme.x=1,cpus=2")
    assert t.kernel_args == ("module_blacklist=virtio_net,virtio_console", "nvme.x=1")
    assert t.cpus == 2
    with pytest.raises(BadInput, match="bad topology item 'virtio_console'"):
        Topology.parse("cpus=2,virtio_console")


def test_namespace_size_must_be_block_multiple():
    with pytest.raises(BadInput, match="multiple of its block size 4096"):
        Namespace.parse("1025K:4096")


def test_a_subsystem_shares_its_namespaces_some_detached():
    t = Topology.parse("controllers=2,subsystem=on,namespaces=1G+512M:detached+256M:4096:detached")
    ns = t.controllers[0].namespaces
    assert [n.detached for n in ns] == [False, True, True] and ns[2].block_size == 4096
    assert t.subsystem and t.controllers[1].namespaces == ns
    assert str(t) == ("cpus=1,mem=1G,nvme=[1G:512+512M:512:detached+256M:4096:detached;"
                      "1G:512+512M:512:detached+256M:4096:detached],subsystem")
    assert t.attached_nsids() == [1]
    assert Topology.build(controllers=2, namespaces=2).block_devices(1) == ["nvme1n1", "nvme1n2"]
    assert t != Topology.parse("controllers=2,namespaces=1G+512M+256M:4096")


def test_the_marker_form_of_a_subsystem_equals_the_cli_form():
    marker = Topology.build(controllers=2, subsystem=True, namespaces=["512M", "256M:detached"])
    assert marker == Topology.parse("controllers=2,subsystem=on,namespaces=512M+256M:detached")


def test_a_root_ports_link_speed_is_part_of_the_shape():
    slow = Topology.parse("link_speed=2.5,cpus=2")
    assert slow == Topology.build(link_speed="2.5", cpus=2)
    assert str(slow) == "cpus=2,mem=1G,nvme=[1G:512],link=2.5GT/s"
    assert str(Topology.build(cpus=2)) == "cpus=2,mem=1G,nvme=[1G:512]"  # QEMU's own speed
