#!/bin/sh
# Runs in the guest: a driver booted without poll queues (2 CPUs: 2/0/0) gets write_queues=2
# poll_queues=1 and a sysfs reset under a randread load on both CPUs, then prints each
# hardware context's requests every 3 s. Run from the host:
#   python3 -m harness run --kernel debian:6.1 --topology cpus=2 --timeout 200 -- \
#       "$(cat directed-repro.sh)"
P=/sys/module/nvme/parameters
echo "params: write=$(cat $P/write_queues) poll=$(cat $P/poll_queues)"
dmesg | grep "default/read/poll"
ls /sys/block/nvme0n1/mq/
fio --name=r --filename=/dev/nvme0n1 --rw=randread --ioengine=libaio --iodepth=32 \
    --direct=1 --bs=4k --runtime=45 --time_based --numjobs=2 --cpus_allowed=0-1 \
    --cpus_allowed_policy=split --group_reporting --output-format=terse \
    --terse-version=3 > /tmp/fio.out 2>&1 &
sleep 4
echo 2 > $P/write_queues
echo 1 > $P/poll_queues
s=$(date +%s)
echo 1 > /sys/class/nvme/nvme0/reset_controller
e=$(date +%s)
echo "reset write returned after $((e - s)) s"
(sleep 8; echo w > /proc/sysrq-trigger) &
for i in $(seq 1 12); do
    sleep 3
    printf "%s busy:" "$i"
    for h in /sys/kernel/debug/block/nvme0n1/hctx*; do
        printf " %s=%s" "${h##*/}" "$(wc -l < "$h/busy")"
    done
    echo
done
wait
cut -d';' -f1-8 /tmp/fio.out | head
dmesg | grep -i "nvme\|I/O" | tail -25
