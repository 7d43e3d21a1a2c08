# shellcheck shell=bash
# The guest's CPUs, by its own accounting.

# _cpu_sample_ticks: until killed, prints "EPOCH BUSY IDLE" once a second: the ticks (USER_HZ)
# since boot the CPUs were busy (user, nice, system, irq, softirq, steal) and idle (idle,
# iowait), over every CPU (/proc/stat's first line).
_cpu_sample_ticks() {
    local user nice system idle iowait irq softirq steal
    _nap_open
    while :; do
        read -r _ user nice system idle iowait irq softirq steal _ < /proc/stat
        echo "$EPOCHREALTIME $((user + nice + system + irq + softirq + steal)) $((idle + iowait))"
        _nap 1
    done
}
