# A directed reproduction: attach namespace 2 to both controllers; each controller's scan then
# sleeps 1.5 s in nvme_alloc_ns (widen-window.patch); reset nvme1 0.7 s into that.
sysctl -q -w kernel.hung_task_timeout_secs=10
c0=$(cat /sys/class/nvme/nvme0/cntlid); c1=$(cat /sys/class/nvme/nvme1/cntlid)
t0=$EPOCHREALTIME
nvme attach-ns /dev/nvme0 -n 2 -c $c0,$c1 >/dev/null &
sleep 0.7
( t1=$EPOCHREALTIME; echo 1 > /sys/class/nvme/nvme1/reset_controller; echo "reset of nvme1 started ${t1}, returned $EPOCHREALTIME" ) &
for i in $(seq 25); do sleep 1; [ -z "$(jobs -r)" ] && break; done
echo "attach started $t0; after ${i}s: nvme1 $(cat /sys/class/nvme/nvme1/state); jobs still running: $(jobs -r | wc -l)"
dmesg | grep -E "blocked for more|nvme_wait_freeze|rescanning" | head -6
sleep 3; echo "namespace 2 devices: $(ls /sys/block | grep "n2$" | tr "\n" " ")"
