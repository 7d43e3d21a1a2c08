# shellcheck shell=bash
# Commands that may hang (management commands racing with resets), run with a bound.

# _run_killing KILL_S PROGRAM [ARG]...: runs PROGRAM with its output discarded, killed
# (SIGKILL) if still running after KILL_S seconds; returns its exit status (137: killed).
_run_killing() {
    local kill_s=$1
    shift
    timeout -s KILL "$kill_s" "$@" >/dev/null 2>&1
}

# _loop_commands KILL_S COMMAND PAUSE [COMMAND PAUSE]...: runs each shell COMMAND in turn
# (sh -c), then sleeps PAUSE seconds. A command may fail (that is its answer), but one still
# running after KILL_S is killed, printed as "HUNG COMMAND", and ends the loop (returns 1);
# else prints "DONE OK FAILED": how many succeeded and failed.
_loop_commands() {
    local kill_s=$1 ok=0 failed=0 rc
    shift
    while [ $# -ge 2 ]; do
        _run_killing "$kill_s" sh -c "$1"
        rc=$?
        if [ $rc -eq 137 ]; then
            echo "HUNG $1"
            return 1
        fi
        if [ $rc -eq 0 ]; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
        sleep "$2"
        shift 2
    done
    echo "DONE $ok $failed"
}
