# shellcheck shell=bash
# NVMe controllers through sysfs (under $NVMEH_SYSFS, default /sys) and nvme-cli. CTRL is a
# controller's name (nvme0). States read from sysfs one line at a time with a builtin: no
# process start per sample.

# _nvme_wait_state CTRL STATES [DEADLINE_S [PRINT [NAP_S [PID]]]]: polls CTRL's state until
# it matches STATES, one or more globs joined by "|" ("live", "live|gone|deleting*"; "!live":
# any state but these; a controller without a state file is "gone"), for at most DEADLINE_S
# whole seconds (0, the default: no limit), and while process PID runs (if given), sampling
# every NAP_S seconds (default 0.01; 0: without a pause). PRINT: "changes" (default) prints
# "EPOCH STATE" for the first state and each change, "last" the state it ended in as
# "EPOCH STATE", "state" that state alone, "none" nothing. Sets NVME_STATE to the state it
# ended in; returns 0 on a match, 1 past the deadline, 2 once PID has ended.
_nvme_wait_state() {
    local file=${NVMEH_SYSFS:-/sys}/class/nvme/$1/state want=$2 deadline=${3:-0}
    local print=${4:-changes} nap=${5:-0.01} pid=${6:-} negate='' prev='' end=0 s rc
    if [[ $want == '!'* ]]; then
        negate=1
        want=${want#!}
    fi
    want="@($want)"  # one extended glob: [[ ]] matches those without shopt extglob
    [ "$deadline" -gt 0 ] && end=$((${EPOCHREALTIME/./} + deadline * 1000000))
    [ "$nap" != 0 ] && _nap_open
    while :; do
        s=gone
        read -r s 2>/dev/null < "$file"
        if [ "$print" = changes ] && [ "$s" != "$prev" ]; then
            echo "$EPOCHREALTIME $s"
            prev=$s
        fi
        # shellcheck disable=SC2053  # STATES are globs
        if [[ $s == $want ]]; then rc=0; else rc=1; fi
        [ -n "$negate" ] && rc=$((1 - rc))
        [ "$rc" = 0 ] && break
        if [ "$end" -gt 0 ] && [ "${EPOCHREALTIME/./}" -ge "$end" ]; then
            rc=1
            break
        fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            rc=2
            break
        fi
        [ "$nap" != 0 ] && _nap "$nap"
    done
    # shellcheck disable=SC2034  # read by the callers (pci.sh)
    NVME_STATE=$s
    case $print in
        last) echo "$EPOCHREALTIME $s" ;;
        state) echo "$s" ;;
    esac
    return "$rc"
}

# _nvme_reset_wait_live CTRL: writes CTRL's reset_controller, then waits (without limit: the
# caller's timeout ends it) until CTRL is live; prints "START LIVE RC": the guest's clock at
# the write and when live was seen, and the write's exit status (1: the driver refused it).
_nvme_reset_wait_live() {
    local t0 rc
    _nap_open  # before the write: the wait after it starts sampling at once
    t0=$EPOCHREALTIME
    echo 1 > "${NVMEH_SYSFS:-/sys}/class/nvme/$1/reset_controller"
    # shellcheck disable=SC2320  # the write's status: the driver's answer
    rc=$?
    _nvme_wait_state "$1" live 0 none
    echo "$t0 $EPOCHREALTIME $rc"
}

# _nvme_reset_concurrently CTRL WIDTH: WIDTH writes to CTRL's reset_controller at once;
# prints each one's exit status (0: accepted, 1: refused) as it ends.
_nvme_reset_concurrently() {
    local i
    for ((i = 0; i < $2; i++)); do
        # shellcheck disable=SC2320  # the write's status: the driver's answer
        (echo 1 > "${NVMEH_SYSFS:-/sys}/class/nvme/$1/reset_controller" 2>/dev/null; echo $?) &
    done
    wait
}

# _nvme_sample_state CTRL [NS]: until killed, samples CTRL's state every 10 ms and prints
# "EPOCH STATE" for the first state and each change; and each time CTRL is back to live,
# "EPOCH io-resumed" once a write completes on namespace NS (default CTRLn1) after that.
_nvme_sample_state() {
    local sys=${NVMEH_SYSFS:-/sys}
    local file=$sys/class/nvme/$1/state stat=$sys/block/${2:-${1}n1}/stat prev='' io='' s w w0
    _nap_open
    while :; do
        s=gone
        read -r s 2>/dev/null < "$file"
        if [ "$s" != "$prev" ]; then
            echo "$EPOCHREALTIME $s"
            if [ "$s" = live ] && [ -n "$prev" ]; then
                w0=
                read -r _ _ _ _ w0 _ 2>/dev/null < "$stat" && io=1
            fi
            prev=$s
        fi
        if [ -n "$io" ]; then
            w=
            read -r _ _ _ _ w _ 2>/dev/null < "$stat"
            if [ "${w:-0}" -gt "$w0" ]; then
                echo "$EPOCHREALTIME io-resumed"
                io=
            fi
        fi
        _nap 0.01
    done
}

# _nvme_loop_admin CTRL SECONDS KILL_S: nvme-cli admin commands to /dev/CTRL (id-ctrl,
# smart-log, get-feature) in turn for SECONDS; one still running after KILL_S is killed,
# printed as "HUNG nvme ARGS", and ends the loop (returns 1); else prints "admin commands: N".
_nvme_loop_admin() {
    local end=$((SECONDS + $2)) n=0 args
    while [ "$SECONDS" -lt "$end" ]; do
        for args in "id-ctrl /dev/$1" "smart-log /dev/$1" "get-feature /dev/$1 -f 7"; do
            # shellcheck disable=SC2086  # one word per argument
            _run_killing "$3" nvme $args
            if [ $? -eq 137 ]; then
                echo "HUNG nvme $args"
                return 1
            fi
            n=$((n + 1))
        done
    done
    echo "admin commands: $n"
}
