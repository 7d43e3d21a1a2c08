# shellcheck shell=bash
# Steps the other topic files share. Like every file here: only function definitions and
# comments, sent ahead of each call that needs them (harness/guest/ssh.py: Guest.call), so the
# guest's root image holds none of it and a restored snapshot runs the current text.
# Paths come from variables with the real default (NVMEH_RUN, NVMEH_SYSFS), so that the unit
# tests run these functions on the host against a fake tree.

# _nap_open: opens fd 8 on a pipe that only this shell holds, for _nap (once per shell: again
# is a no-op); prints nothing. Loops that watch the controller sleep this way because a
# process started per turn costs tens of ms on a busy TCG guest and misses short states.
# Opened read-write through /dev/fd, the pipe keeps a writer (this shell) and never ends; a
# process substitution costs one fork, where mktemp, mkfifo and rm cost three process starts.
_nap_open() {
    [ -n "${NVMEH_NAP_OPEN:-}" ] && return 0
    exec 8<> <(:)
    NVMEH_NAP_OPEN=1
}

# _nap SECONDS: sleeps SECONDS (a fraction is fine) without starting a process: a read on
# _nap_open's pipe that times out; prints nothing.
_nap() {
    read -r -t "$1" -u 8 _
}

# _run_stamped TEXT: runs the shell TEXT in this shell, then prints "@@act START RC": the
# guest's clock when TEXT started and its exit status (harness.faults.guest.stamped parses it).
_run_stamped() {
    local t0=$EPOCHREALTIME rc
    eval "$1"
    rc=$?
    echo "@@act $t0 $rc"
}
