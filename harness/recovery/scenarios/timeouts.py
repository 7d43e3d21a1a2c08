"""The driver's timeouts that scenarios shorten, so that its timeout paths run within seconds
(the defaults: 30 s for I/O, 60 s for admin commands)."""

IO_TIMEOUT = 5  # nvme_core.io_timeout
ADMIN_TIMEOUT = 5  # nvme_core.admin_timeout: a reset talking to a silent device gives up
SHORT_IO_TIMEOUT = f"nvme_core.io_timeout={IO_TIMEOUT}"
SHORT_TIMEOUTS = f"{SHORT_IO_TIMEOUT} nvme_core.admin_timeout={ADMIN_TIMEOUT}"
