# shellcheck shell=bash
# Suspend to idle, which the host ends with a key press on the guest's PS/2 keyboard. Sysfs
# under $NVMEH_SYSFS (default /sys), state kept in $NVMEH_RUN (default /run/nvmeh).

# _suspend_start [RESET_FILE]: makes the keyboard a wakeup source and the suspend visible
# on the console (consoles kept awake, the PM core's debug messages, console log level 8),
# saving what it changes for _suspend_end; then suspends to idle, detached and half a second
# later, so the call returns first; with RESET_FILE (a controller's reset_controller), a reset
# is started in the background just before, so that the two race. The exit status of the
# write to /sys/power/state lands in suspend.rc. Prints nothing; fails with one line on
# stderr if the guest cannot suspend to idle.
_suspend_start() {
    local sys=${NVMEH_SYSFS:-/sys} run=${NVMEH_RUN:-/run/nvmeh}
    local kbd=$sys/devices/platform/i8042/serio0/power/wakeup
    local quiet=$sys/module/printk/parameters/console_suspend
    local states level
    read -r states < "$sys/power/state"
    case " $states " in
        *" freeze "*) ;;
        *) echo "the kernel offers no suspend to idle ($sys/power/state: $states)" >&2; return 1 ;;
    esac
    [ -w "$kbd" ] || { echo "no PS/2 keyboard to wake the guest ($kbd)" >&2; return 1; }
    read -r level _ < /proc/sys/kernel/printk
    { cat "$kbd" "$quiet" "$sys/power/pm_debug_messages"; echo "$level"; } > "$run/suspend.saved"
    echo enabled > "$kbd"
    echo N > "$quiet"
    echo 1 > "$sys/power/pm_debug_messages"
    dmesg -n 8
    rm -f "$run/suspend.rc"
    setsid sh -c "sleep 0.5; ${1:+(echo 1 > $1) & }echo freeze > $sys/power/state
                  echo \$? > $run/suspend.rc" < /dev/null > /dev/null 2>&1 &
}

# _suspend_end: waits up to 10 s for the suspend's exit status, puts back what _suspend_start
# changed, and prints "rc=STATUS" (none: no status yet) and the kernel's suspend statistics
# as NAME=VALUE lines (success, fail, last_failed_dev, last_failed_errno, last_failed_step).
_suspend_end() {
    local sys=${NVMEH_SYSFS:-/sys} run=${NVMEH_RUN:-/run/nvmeh}
    local rc=none stat kbd quiet debug level
    for _ in $(seq 100); do
        [ -s "$run/suspend.rc" ] && break
        sleep 0.1
    done
    [ -s "$run/suspend.rc" ] && read -r rc < "$run/suspend.rc"
    if [ -s "$run/suspend.saved" ]; then
        { read -r kbd; read -r quiet; read -r debug; read -r level; } < "$run/suspend.saved"
        echo "$kbd" > "$sys/devices/platform/i8042/serio0/power/wakeup"
        echo "$quiet" > "$sys/module/printk/parameters/console_suspend"
        echo "$debug" > "$sys/power/pm_debug_messages"
        dmesg -n "$level"
        rm -f "$run/suspend.saved"
    fi
    echo "rc=$rc"
    for stat in success fail last_failed_dev last_failed_errno last_failed_step; do
        echo "$stat=$(cat "$sys/power/suspend_stats/$stat" 2>/dev/null)"
    done
}
