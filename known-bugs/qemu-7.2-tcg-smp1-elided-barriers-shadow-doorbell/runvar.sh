#!/bin/bash
# runvar.sh NAME KERNEL SMPMODE [NVME_SRC]: one directed run, stalls dumped by bin/poll.py
name=$1; kernel=$2; smp=$3; src=$4
extra=""; [ -n "$src" ] && extra="--nvme-src $src"
mkdir -p /tmp/inv21/var/$name
cd /work/main
start=$(date +%s)
INV21_SMP=$smp timeout 600 python -m harness run --kernel $kernel $extra --no-snapshot --qemu /tmp/inv21/qemu-poll.sh \
  --artifacts /tmp/inv21/var/$name/art --timeout 500 -- env DUR=${DUR:-180} WR=4 RD=10 bash -c "$(cat /tmp/inv21/directed.sh)" \
  > /tmp/inv21/var/$name/out.log 2>&1
echo "exit $?" >> /tmp/inv21/var/$name/out.log
for f in /tmp/inv21/dumps/stall-*; do [ -e "$f" ] && [ $(stat -c %Y "$f") -ge $start ] && mv "$f" /tmp/inv21/var/$name/; done
echo "$name done: stall dumps $(ls /tmp/inv21/var/$name | grep -c stall-)"
