# A directed reproduction: attach namespace 2 to both controllers; each controller's scan then
# sleeps 1.5 s in nvme_alloc_ns (widen-window.patch); reset nvme1 0.8 s into that.
# The hung-task detector is switched on only once the reset is under way: it then first sees
# the writer of reset_controller and the reset worker at the same check, and reports both
# (on from the start, it reported the writer alone one time in four: it blocks 1-2 s earlier)
sysctl -q -w kernel.hung_task_timeout_secs=0
c0=$(cat /sys/class/nvme/nvme0/cntlid); c1=$(cat /sys/class/nvme/nvme1/cntlid)
t0=$EPOCHREALTIME
nvme attach-ns /dev/nvme0 -n 2 -c $c0,$c1 >/dev/null &
# Into nvme1's window, timed from its scan saying it sleeps there (a delay from the attach
# missed the window on a busy host): the reset must freeze before the scan adds namespace 2
# (1.5 s in) and wait for the freeze after it (its own 1 s sleep, after bringing nvme1 up).
for i in $(seq 200); do dmesg | grep -q "nvme1: nvmeh: widened scan window" && break; sleep 0.05; done
sleep 0.8
( t1=$EPOCHREALTIME; echo 1 > /sys/class/nvme/nvme1/reset_controller; echo "reset of nvme1 started ${t1}, returned $EPOCHREALTIME" ) &
sleep 3; sysctl -q -w kernel.hung_task_timeout_secs=10
for i in $(seq 25); do sleep 1; [ -z "$(jobs -r)" ] && break; done
echo "attach started $t0; after ${i}s: nvme1 $(cat /sys/class/nvme/nvme1/state); jobs still running: $(jobs -r | wc -l)"
dmesg | grep -E "blocked for more|nvme_wait_freeze|rescanning" | head -6
sleep 3; echo "namespace 2 devices: $(ls /sys/block | grep "n2$" | tr "\n" " ")"
