# shellcheck shell=bash
# A PCI function's command register (setpci) and its presence on the bus (sysfs, under
# $NVMEH_SYSFS, default /sys). ADDRESS: the function's address (0000:00:04.0); BITS: command
# register bits, in hex.

# _pci_read_command STATE_FILE ADDRESS: prints "BEFORE COMMAND AFTER": the first line of
# STATE_FILE, the function's command register (hex), and STATE_FILE again, read in that order
# (a reset that ran meanwhile shows as two different states).
_pci_read_command() {
    local before after command
    read -r before < "$1"
    command=$(setpci -s "$2" COMMAND)
    read -r after < "$1"
    echo "$before $command $after"
}

# _pci_restore ADDRESS BITS DRIVER: brings a silenced function back: BITS of its command
# register set again if it still exists; then, if no driver holds it (it was removed, or its
# driver gave it up), a rescan of the bus, and DRIVER bound should the rescan not do it.
# Prints nothing; returns the last step's exit status.
_pci_restore() {
    local sys=${NVMEH_SYSFS:-/sys}
    local dev=$sys/bus/pci/devices/$1
    if [ -e "$dev" ]; then setpci -s "$1" "COMMAND=$2:$2"; fi
    if [ ! -e "$dev/driver" ]; then
        echo 1 > "$sys/bus/pci/rescan"
        [ -e "$dev/driver" ] || echo "$1" > "$sys/bus/pci/drivers/$3/bind"
    fi
}

# _pci_silence_during_reset CTRL ADDRESS BITS PHASE: starts a reset of controller CTRL
# (sysfs) and, as soon as its state shows PHASE ("resetting": out of live; "connecting") or
# the reset has ended, clears BITS of the function's command register; spins without a
# pause, because the phases last tens of ms. Prints "EPOCH STATE": when it cleared them, and
# the state it saw.
_pci_silence_during_reset() {
    local states=$4
    [ "$4" = resetting ] && states='!live'
    (echo 1 > "${NVMEH_SYSFS:-/sys}/class/nvme/$1/reset_controller") 2>/dev/null &
    _nvme_wait_state "$1" "$states" 0 none 0 $!
    setpci -s "$2" "COMMAND=0:$3"
    # shellcheck disable=SC2154  # set by _nvme_wait_state (nvme.sh)
    echo "$EPOCHREALTIME $NVME_STATE"
}
