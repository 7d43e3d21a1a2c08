#!/bin/bash
# inv21 directed loop: sysfs resets + admin commands under a write load, then a read-only phase
# with no reset; io_timeout lowered to 3 s so that a stall is noticed (and recovered) quickly.
D=/dev/nvme0n1
echo ${IOTMO:-3000} > /sys/block/nvme0n1/queue/io_timeout
echo "io_timeout $(cat /sys/block/nvme0n1/queue/io_timeout) ms"
end=$((SECONDS + ${DUR:-600}))
r=0
while [ $SECONDS -lt $end ]; do
  r=$((r+1))
  fio --name=load --filename=$D --direct=1 --ioengine=libaio --iodepth=8 --numjobs=2 --bs=4k \
      --rw=randwrite --size=128M --offset_increment=128M --time_based --runtime=${WR:-6} --output=/dev/null &
  p=$!
  sleep 1
  for i in 1 2 3; do
    echo 1 > /sys/class/nvme/nvme0/reset_controller
    for j in 1 2; do nvme id-ctrl /dev/nvme0 >/dev/null; nvme smart-log /dev/nvme0 >/dev/null; nvme get-feature /dev/nvme0 -f 7 >/dev/null; done
    sleep 0.$((RANDOM % 9 + 1))
  done
  wait $p
  fio --name=rd --filename=$D --direct=1 --ioengine=libaio --iodepth=8 --numjobs=2 --bs=4k \
      --rw=randread --size=128M --offset_increment=128M --time_based --runtime=${RD:-6} --output=/dev/null
  echo "round $r t=$SECONDS timeouts=$(dmesg | grep -c 'timeout')"
done
dmesg | grep -E 'nvme' | grep -vE 'default/read/poll|bogus' | tail -60
