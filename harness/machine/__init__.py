"""The machine: QEMU's command line and lifecycle, QMP, the console, keys, snapshots, the lab.
Knows nothing of what runs in the guest.
"""
