"""The guest, reached over SSH only (any machine, not only QEMU): NVMe and PCI operations, fio
loads, the guest's own clock and CPU.
"""
