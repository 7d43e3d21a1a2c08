# shellcheck shell=bash
# The verifying fio load of a scenario (harness/guest/fio.py: VerifyLoad) in its working directory
# DIR, and the block devices it runs on (sysfs, under $NVMEH_SYSFS, default /sys).

# _fio_run_load DIR FLUSH [VAR=VALUE]...: becomes (exec) fio running DIR/verify-load.fio with
# the VARs in its environment, its pid in DIR/fio.pid; its JSON result goes to load.json, its
# messages to load.err, each line stamped with the guest's clock and "@@end" after the last;
# the trigger file DIR/trigger makes it save its verify state, stop, and run FLUSH.
_fio_run_load() {
    local dir=$1 flush=$2
    shift 2
    cd "$dir" && echo $$ > fio.pid &&
        exec env "$@" fio --output-format=json --output=load.json --trigger-file="$dir/trigger" \
            --trigger="$flush" verify-load.fio 2> >(_stamp_lines > load.err; echo @@end >> load.err)
}

# _stamp_lines: prints each line of its input as "EPOCH LINE", with the guest's clock when
# it was read.
_stamp_lines() {
    local line
    while IFS= read -r line; do printf "%s %s\n" "$EPOCHREALTIME" "$line"; done
}

# _fio_wait_writes DIR DEVICE BEFORE: returns 0 as soon as the load in DIR has sent writes
# (its process's I/O accounting; a kernel without it counts as sending) and DEVICE has
# completed more than BEFORE writes, 1 after 40 samples 50 ms apart; prints nothing.
_fio_wait_writes() {
    local pid sent key value
    for _ in {1..40}; do
        sent=0
        if read -r pid < "$1/fio.pid"; then
            if [ -e "/proc/$pid/io" ]; then
                while read -r key value; do
                    [ "$key" = write_bytes: ] && sent=$value
                done < "/proc/$pid/io"
            else
                sent=1
            fi
        fi
        _blk_count_writes "$2"
        [ "$sent" -gt 0 ] && [ "${BLK_WRITES:-0}" -gt "$3" ] && return 0
        sleep 0.05
    done
    return 1
}

# _blk_count_writes DEVICE: sets BLK_WRITES to the writes DEVICE (/dev/nvme0n1) has completed,
# or to nothing if it is not a block device; prints nothing. An NVMe multipath node
# (nvme0n1 over nvme0c0n1, nvme0c1n1, ...) counts nothing itself before Linux 6.2: its paths
# are added in.
_blk_count_writes() {
    local block=${NVMEH_SYSFS:-/sys}/class/block name=${1##*/} stat writes
    local stats=("$block/$name/stat")
    if [[ $name =~ ^(nvme[0-9]+)(n[0-9]+)$ ]]; then
        stats+=("$block/${BASH_REMATCH[1]}"c*"${BASH_REMATCH[2]}/stat")
    fi
    BLK_WRITES=
    for stat in "${stats[@]}"; do
        if [ -e "$stat" ]; then
            read -r _ _ _ _ writes _ < "$stat"
            BLK_WRITES=$((${BLK_WRITES:-0} + writes))
        fi
    done
}

# _blk_wait_more_writes DEVICE SECONDS: returns 0 once DEVICE has completed more writes than it
# had at the call (0 at once if it is not a block device), 1 if it completes none within SECONDS
# (whole). Sampled every 20 ms.
_blk_wait_more_writes() {
    local before deadline
    _blk_count_writes "$1"
    [ -n "$BLK_WRITES" ] || return 0
    before=$BLK_WRITES
    deadline=$((${EPOCHREALTIME/./} + $2 * 1000000))
    _nap_open
    while ((${EPOCHREALTIME/./} < deadline)); do
        _nap 0.02
        _blk_count_writes "$1"
        [ "$BLK_WRITES" -gt "$before" ] && return 0
    done
    return 1
}

# _blk_print_writes DEVICE: prints the writes DEVICE has completed (_blk_count_writes), or an
# empty line if it is not a block device.
_blk_print_writes() {
    _blk_count_writes "$1"
    echo "$BLK_WRITES"
}

# _blk_read_blocks DEVICE SIZE OFFSET...: prints, for each OFFSET (bytes, a multiple of SIZE),
# "@@OFFSET" and on the next line the SIZE bytes there in base64, read with O_DIRECT.
_blk_read_blocks() {
    local dev=$1 size=$2 offset
    shift 2
    for offset; do
        echo "@@$offset"
        dd if="$dev" bs="$size" skip=$((offset / size)) count=1 iflag=direct 2>/dev/null |
            base64 -w0
        echo
    done
}

# _fio_read_messages DIR: prints the load's stamped messages (DIR/load.err) once the stamping
# has written their end ("@@end"), or as they are after 50 checks 0.1 s apart.
_fio_read_messages() {
    local err=$1/load.err
    for _ in {1..50}; do
        [ "$(tail -n 1 "$err")" = @@end ] && break
        sleep 0.1
    done
    cat "$err"
}

# _fio_dump_states DIR: prints each verify state fio saved in DIR (*verify.state), in base64,
# each after an empty line.
_fio_dump_states() {
    local state
    for state in "$1"/*verify.state; do
        [ -e "$state" ] && { echo; base64 -w0 "$state"; }
    done
}

# _fio_dump_logs DIR KIND: prints each job's fio log of KIND (iops, lat, bw:
# DIR/load_KIND.*.log), each after a line "@@job".
_fio_dump_logs() {
    local log
    for log in "$1/load_$2".*.log; do
        [ -e "$log" ] && { echo "@@job"; cat "$log"; }
    done
}
