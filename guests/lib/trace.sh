# shellcheck shell=bash
# The block layer's requeue tracepoint, through tracefs (under $NVMEH_SYSFS, default /sys).

# _trace_start_requeues: mounts tracefs if it is not, empties the trace buffer and switches
# the requeue tracepoint and tracing on; prints nothing; returns non-zero where the kernel
# has no tracefs or no such tracepoint.
_trace_start_requeues() {
    local t=${NVMEH_SYSFS:-/sys}/kernel/tracing
    { [ -d "$t/events" ] || mount -t tracefs nodev "$t"; } &&
        echo > "$t/trace" && echo 1 > "$t/events/block/block_rq_requeue/enable" &&
        echo 1 > "$t/tracing_on"
}

# _trace_read_requeues [stop]: prints the trace buffer's requeue lines; "stop": switches the
# tracepoint off after.
_trace_read_requeues() {
    local t=${NVMEH_SYSFS:-/sys}/kernel/tracing
    grep -F block_rq_requeue "$t/trace"
    if [ "${1:-}" = stop ]; then echo 0 > "$t/events/block/block_rq_requeue/enable"; fi
}
