"""Building the guest: Debian packages, kernels, the NVMe driver from source, images.
"""
