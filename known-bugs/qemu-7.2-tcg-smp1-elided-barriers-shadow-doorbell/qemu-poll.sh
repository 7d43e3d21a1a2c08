#!/bin/sh
# QEMU 7.2 with only the rare pci_nvme events traced (addresses of the shadow doorbell
# buffers and SQ rings) and an extra HMP socket for bin/poll.py; INV21_SMP=maxcpus2 turns
# "-smp N" into "-smp N,maxcpus=2" (TCG then emits guest memory barriers: CF_PARALLEL)
mkdir -p /tmp/inv21/traces /tmp/inv21/hmp
cd /tmp/inv21/traces
ls -t trace-*.log 2>/dev/null | tail -n +4 | xargs -r rm -f
if [ "$INV21_SMP" = maxcpus2 ]; then
  args=""; prev=""
  for a in "$@"; do
    if [ "$prev" = "-smp" ]; then set -- "$@" "$a,maxcpus=2"; else set -- "$@" "$a"; fi
    prev="$a"; shift
  done
fi
exec /usr/bin/qemu-system-x86_64 -msg timestamp=on -trace events=/tmp/inv21/events-min.txt -D /tmp/inv21/traces/trace-$$.log \
  -monitor unix:/tmp/inv21/hmp/hmp-$$.sock,server=on,wait=off "$@"
