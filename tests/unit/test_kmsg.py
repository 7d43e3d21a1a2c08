"""Tests for harness.kmsg against kernel log excerpts as the kernel prints them."""

# The recorded logs keep the kernel's own line lengths.
# ruff: noqa: E501

from __future__ import annotations

import pytest

from harness.kmsg import (
    IDLE_LINE_LIMIT,
    MAX_REPORT_LINES,
    Oops,
    OopsDetector,
    dedupe,
    scan,
    strip_prefix,
)

# --------------------------------------------------------------------------- recorded logs
# Serial console (ttyS0) output: timestamps, CRLF line endings.

WARNING_CONSOLE = (
    "[   42.118203] ------------[ cut here ]------------\r\n"
    "[   42.118917] WARNING: CPU: 1 PID: 53 at drivers/nvme/host/pci.c:2797"
    " nvme_reset_work+0x1f5/0x1140 [nvme]\r\n"
    "[   42.120514] Modules linked in: nvme nvme_core\r\n"
    "[   42.121103] CPU: 1 PID: 53 Comm: kworker/u4:1 Not tainted 6.1.0-rc5 #1\r\n"
    "[   42.121944] Hardware name: QEMU Standard PC (Q35 + ICH9, 2009),"
    " BIOS 1.16.0-debian-1.16.0-5 04/01/2014\r\n"
    "[   42.123207] Workqueue: nvme-reset-wq nvme_reset_work [nvme]\r\n"
    "[   42.123998] RIP: 0010:nvme_reset_work+0x1f5/0x1140 [nvme]\r\n"
    "[   42.124871] Code: 48 89 df e8 2c 9b ff ff 41 89 c4 85 c0 0f 85 06 01 00 00 48 8b 83 b8"
    " 02 00 00 <0f> 0b 48 8b 7b 10 e8 e0 33 2d e1 49 89 c5 48 85 c0 74 2e\r\n"
    "[   42.127006] RSP: 0018:ffffc9000025fdd0 EFLAGS: 00010246\r\n"
    "[   42.127652] RAX: 0000000000000000 RBX: ffff888004a98000 RCX: 0000000000000000\r\n"
    "[   42.128503] RDX: 0000000000000001 RSI: 0000000000000002 RDI: ffff888004a98240\r\n"
    "[   42.129351] RBP: ffff888004a98b70 R08: 0000000000000000 R09: 0000000000000000\r\n"
    "[   42.130195] R10: 0000000000000001 R11: 0000000000000000 R12: 0000000000000002\r\n"
    "[   42.131042] R13: ffff888004a98240 R14: ffff888003c19a00 R15: ffff888004a98ae8\r\n"
    "[   42.131886] FS:  0000000000000000(0000) GS:ffff88803ed00000(0000)"
    " knlGS:0000000000000000\r\n"
    "[   42.132842] CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033\r\n"
    "[   42.133528] CR2: 00007f2e3f1b8000 CR3: 000000000ae0c000 CR4: 00000000000006e0\r\n"
    "[   42.134381] Call Trace:\r\n"
    "[   42.134707]  <TASK>\r\n"
    "[   42.135001]  ? lock_acquire+0xc8/0x2d0\r\n"
    "[   42.135560]  process_one_work+0x28c/0x5a0\r\n"
    "[   42.136031]  worker_thread+0x52/0x3b0\r\n"
    "[   42.136529]  ? process_one_work+0x5a0/0x5a0\r\n"
    "[   42.136987]  kthread+0xe9/0x110\r\n"
    "[   42.137510]  ? kthread_complete_and_exit+0x20/0x20\r\n"
    "[   42.137915]  ret_from_fork+0x22/0x30\r\n"
    "[   42.138496]  </TASK>\r\n"
    "[   42.138951] irq event stamp: 3475\r\n"
    "[   42.139245] hardirqs last  enabled at (3483): [<ffffffff8110b7f2>]"
    " __up_console_sem+0x52/0x60\r\n"
    "[   42.139653] hardirqs last disabled at (3490): [<ffffffff8110b7d7>]"
    " __up_console_sem+0x37/0x60\r\n"
    "[   42.140718] softirqs last  enabled at (3310): [<ffffffff81c001bd>]"
    " __do_softirq+0x1bd/0x2f0\r\n"
    "[   42.141774] softirqs last disabled at (3305): [<ffffffff810a1a4e>]"
    " irq_exit_rcu+0xce/0x120\r\n"
    "[   42.143829] ---[ end trace 0000000000000000 ]---\r\n"
)

NULL_DEREF_CONSOLE = (
    "[   61.398117] nvme nvme0: I/O 7 QID 1 timeout, reset controller\r\n"
    "[   61.402511] BUG: kernel NULL pointer dereference, address: 0000000000000048\r\n"
    "[   61.403360] #PF: supervisor read access in kernel mode\r\n"
    "[   61.403987] #PF: error_code(0x0000) - not-present page\r\n"
    "[   61.404604] PGD 0 P4D 0 \r\n"
    "[   61.404927] Oops: 0000 [#1] PREEMPT SMP NOPTI\r\n"
    "[   61.405473] CPU: 0 PID: 212 Comm: kworker/0:1H Not tainted 6.1.0 #1\r\n"
    "[   61.406284] Hardware name: QEMU Standard PC (Q35 + ICH9, 2009),"
    " BIOS 1.16.0-debian-1.16.0-5 04/01/2014\r\n"
    "[   61.407522] Workqueue: kblockd blk_mq_timeout_work\r\n"
    "[   61.408096] RIP: 0010:nvme_timeout+0x3a/0x3c0 [nvme]\r\n"
    "[   61.408693] Code: 41 56 41 55 41 54 55 48 89 fd 53 48 83 ec 10 4c 8b a7 10 01 00 00"
    " <49> 8b 44 24 48 4c 8b 68 08 4d 8b 75 00 41 8b 9e 80 02 00 00\r\n"
    "[   61.410851] RSP: 0018:ffffc900007cfd38 EFLAGS: 00010246\r\n"
    "[   61.411500] RAX: ffff888004b60000 RBX: 0000000000000000 RCX: 0000000000000000\r\n"
    "[   61.412361] RDX: 0000000000000001 RSI: 0000000000000000 RDI: ffff888004b612c0\r\n"
    "[   61.413213] RBP: ffff888004b612c0 R08: 0000000000000000 R09: ffffffff82e5a4a0\r\n"
    "[   61.414065] R10: 0000000000000000 R11: 0000000000000001 R12: 0000000000000000\r\n"
    "[   61.414916] R13: ffff888003e6c000 R14: 0000000000000000 R15: ffff888004b612c0\r\n"
    "[   61.415768] FS:  0000000000000000(0000) GS:ffff88803ec00000(0000)"
    " knlGS:0000000000000000\r\n"
    "[   61.416730] CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033\r\n"
    "[   61.417418] CR2: 0000000000000048 CR3: 0000000002a0a000 CR4: 00000000000006f0\r\n"
    "[   61.418322] Call Trace:\r\n"
    "[   61.418650]  <TASK>\r\n"
    "[   61.418937]  blk_mq_check_expired+0x7f/0xa0\r\n"
    "[   61.419454]  bt_iter+0x5b/0x70\r\n"
    "[   61.419855]  blk_mq_queue_tag_busy_iter+0x1ea/0x3d0\r\n"
    "[   61.420445]  ? blk_mq_check_expired+0xa0/0xa0\r\n"
    "[   61.421018]  blk_mq_timeout_work+0x63/0x160\r\n"
    "[   61.421537]  process_one_work+0x1e5/0x3b0\r\n"
    "[   61.422039]  worker_thread+0x50/0x3a0\r\n"
    "[   61.422501]  ? rescuer_thread+0x390/0x390\r\n"
    "[   61.423000]  kthread+0xe8/0x110\r\n"
    "[   61.423403]  ? kthread_complete_and_exit+0x20/0x20\r\n"
    "[   61.423984]  ret_from_fork+0x22/0x30\r\n"
    "[   61.424432]  </TASK>\r\n"
    "[   61.424723] Modules linked in: nvme nvme_core\r\n"
    "[   61.425261] CR2: 0000000000000048\r\n"
    "[   61.425671] ---[ end trace 0000000000000000 ]---\r\n"
    "[   61.426221] RIP: 0010:nvme_timeout+0x3a/0x3c0 [nvme]\r\n"
    "[   61.426829] Code: 41 56 41 55 41 54 55 48 89 fd 53 48 83 ec 10 4c 8b a7 10 01 00 00"
    " <49> 8b 44 24 48 4c 8b 68 08 4d 8b 75 00 41 8b 9e 80 02 00 00\r\n"
    "[   61.428940] RSP: 0018:ffffc900007cfd38 EFLAGS: 00010246\r\n"
    "[   61.433710] CR2: 0000000000000048 CR3: 0000000002a0a000 CR4: 00000000000006f0\r\n"
    "[   61.435000] Kernel panic - not syncing: Fatal exception\r\n"
    "[   61.435874] Kernel Offset: disabled\r\n"
    "[   61.436297] ---[ end Kernel panic - not syncing: Fatal exception ]---\r\n"
)

# dmesg -r (raw): syslog level before the timestamp.
PAGE_FAULT_DMESG = """\
<1>[  118.640035] BUG: unable to handle page fault for address: ffffc90000a4c038
<1>[  118.640898] #PF: supervisor write access in kernel mode
<1>[  118.641520] #PF: error_code(0x0002) - not-present page
<6>[  118.642140] PGD 100000067 P4D 100000067 PUD 1001df067 PMD 1003e4067 PTE 0
<4>[  118.643019] Oops: 0002 [#1] PREEMPT SMP NOPTI
<4>[  118.643552] CPU: 1 PID: 301 Comm: fio Not tainted 6.1.0 #1
<4>[  118.644229] Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.0-debian-1.16.0-5 04/01/2014
<4>[  118.645494] RIP: 0010:nvme_queue_rq.cold+0x1c/0x27 [nvme]
<4>[  118.646169] Code: 00 00 48 8b 85 b8 00 00 00 e9 5c fd ff ff 48 8b 43 28 <89> 50 38 e9 1e f9 ff ff
<4>[  118.648406] RSP: 0018:ffffc90000837a98 EFLAGS: 00010286
<4>[  118.649041] RAX: ffffc90000a4c000 RBX: ffff888004c3a000 RCX: 0000000000000000
<4>[  118.649898] RDX: 0000000000000012 RSI: ffff888004b5a000 RDI: ffff888004c3a000
<4>[  118.650753] RBP: ffff888004b5a000 R08: 0000000000000001 R09: 0000000000000000
<4>[  118.651608] R10: 0000000000000000 R11: 0000000000000000 R12: ffff888004c3a280
<4>[  118.652462] R13: 0000000000000000 R14: ffff888003e90000 R15: ffffc90000837b58
<4>[  118.653316] FS:  00007f8a2c9ff640(0000) GS:ffff88803ed00000(0000) knlGS:0000000000000000
<4>[  118.654280] CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
<4>[  118.654968] CR2: ffffc90000a4c038 CR3: 0000000004d8c000 CR4: 00000000000006e0
<4>[  118.655823] Call Trace:
<4>[  118.656151]  <TASK>
<4>[  118.656437]  blk_mq_dispatch_rq_list+0x14d/0x7f0
<4>[  118.657013]  __blk_mq_sched_dispatch_requests+0xa5/0x150
<4>[  118.657661]  blk_mq_sched_dispatch_requests+0x30/0x60
<4>[  118.658282]  __blk_mq_run_hw_queue+0x36/0x90
<4>[  118.658820]  blk_mq_sched_insert_requests+0x7a/0x110
<4>[  118.659427]  blk_mq_flush_plug_list+0x113/0x1d0
<4>[  118.659993]  __blk_flush_plug+0xf6/0x140
<4>[  118.660498]  blk_finish_plug+0x25/0x40
<4>[  118.660982]  __x64_sys_io_submit+0xd6/0x190
<4>[  118.661509]  do_syscall_64+0x3b/0x90
<4>[  118.661977]  entry_SYSCALL_64_after_hwframe+0x63/0xcd
<4>[  118.662588] RIP: 0033:0x7f8a2f2a7ae9
<4>[  118.663044] Code: ff ff c3 66 2e 0f 1f 84 00 00 00 00 00 0f 1f 40 00 48 89 f8 48 89 f7
<4>[  118.665187] RSP: 002b:00007f8a2c9fe4c8 EFLAGS: 00000246 ORIG_RAX: 00000000000000d1
<4>[  118.666076] RAX: ffffffffffffffda RBX: 00007f8a2c9ff640 RCX: 00007f8a2f2a7ae9
<4>[  118.666933]  </TASK>
<4>[  118.667222] Modules linked in: nvme nvme_core
<4>[  118.667760] CR2: ffffc90000a4c038
<4>[  118.668171] ---[ end trace 0000000000000000 ]---
"""

# Bare console (no timestamps), KASAN kernel.
GPF_KASAN = """\
general protection fault, probably for non-canonical address 0xdffffc0000000003: 0000 [#1] PREEMPT SMP KASAN NOPTI
KASAN: null-ptr-deref in range [0x0000000000000018-0x000000000000001f]
CPU: 1 PID: 96 Comm: kworker/1:1H Not tainted 6.1.0 #1
Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.0-debian-1.16.0-5 04/01/2014
Workqueue: kblockd blk_mq_run_work_fn
RIP: 0010:blk_mq_run_hw_queue+0x4f/0x3a0
Code: 48 89 fa 48 c1 ea 03 80 3c 02 00 0f 85 0c 03 00 00 48 b8 00 00 00 00 00 fc ff df
RSP: 0018:ffffc9000091fc70 EFLAGS: 00010206
RAX: dffffc0000000000 RBX: 0000000000000000 RCX: ffffffff8207f0f1
RDX: 0000000000000003 RSI: 0000000000000000 RDI: 0000000000000018
RBP: ffff888009d48000 R08: 0000000000000000 R09: fffffbfff0a5e3a4
R10: ffffffff852f1d27 R11: fffffbfff0a5e3a4 R12: 0000000000000000
R13: ffff888009d48000 R14: 0000000000000001 R15: ffff88800b6a1e00
FS:  0000000000000000(0000) GS:ffff88806cf00000(0000) knlGS:0000000000000000
CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
CR2: 000055d0d8a1a0b8 CR3: 000000000bb9c000 CR4: 00000000000006e0
Call Trace:
 <TASK>
 ? nvme_start_queues+0x4a/0x80 [nvme_core]
 blk_mq_run_hw_queues+0x12b/0x3a0
 nvme_start_queues+0x5a/0x80 [nvme_core]
 nvme_reset_work+0x8d3/0x1140 [nvme]
 process_one_work+0x8a2/0x1480
 worker_thread+0x5b1/0xf20
 kthread+0x2a4/0x340
 ret_from_fork+0x1f/0x30
 </TASK>
Modules linked in: nvme nvme_core
---[ end trace 0000000000000000 ]---
"""

KERNEL_BUG = """\
------------[ cut here ]------------
kernel BUG at drivers/nvme/host/pci.c:1024!
invalid opcode: 0000 [#1] PREEMPT SMP NOPTI
CPU: 0 PID: 0 Comm: swapper/0 Not tainted 6.1.0 #1
Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.0-debian-1.16.0-5 04/01/2014
RIP: 0010:nvme_pci_complete_rq+0x8c/0x90 [nvme]
Code: 41 5c c3 cc cc cc cc 48 89 ef e8 0e 4d 30 e1 eb b9 0f 0b <0f> 0b 66 0f 1f 44 00 00
RSP: 0018:ffffc90000003ec8 EFLAGS: 00010202
RAX: 0000000000000001 RBX: ffff888004f20000 RCX: 0000000000000000
RDX: 0000000000000000 RSI: 0000000000000000 RDI: ffff888004f20000
RBP: ffff888004f20000 R08: 0000000000000000 R09: 0000000000000000
R10: 0000000000000000 R11: 0000000000000000 R12: 0000000000000000
R13: ffff888003c41e00 R14: 0000000000000000 R15: 0000000000000000
FS:  0000000000000000(0000) GS:ffff88803ec00000(0000) knlGS:0000000000000000
CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
CR2: 00007ffd4b6fdff8 CR3: 0000000004c8e000 CR4: 00000000000006f0
Call Trace:
 <IRQ>
 nvme_irq+0x142/0x280 [nvme]
 __handle_irq_event_percpu+0x44/0x1a0
 handle_irq_event+0x33/0x80
 handle_edge_irq+0x9e/0x240
 __common_interrupt+0x44/0xc0
 common_interrupt+0x9a/0xc0
 </IRQ>
 <TASK>
 asm_common_interrupt+0x22/0x40
RIP: 0010:default_idle+0xb/0x10
Code: 8b 04 25 c0 bb 01 00 f0 80 60 02 df c3 cc cc cc cc 0f 1f 44 00 00 eb 07 0f 00 2d d2
RSP: 0018:ffffffff82a03e98 EFLAGS: 00000246
 default_idle_call+0x5e/0x1d0
 do_idle+0x1e2/0x250
 cpu_startup_entry+0x19/0x20
 rest_init+0xd8/0xe0
 arch_call_rest_init+0xe/0x1b
 start_kernel+0x6d0/0x6f6
 secondary_startup_64_no_verify+0xe5/0xeb
 </TASK>
Modules linked in: nvme nvme_core
---[ end trace 0000000000000000 ]---
"""

SCHEDULING_WHILE_ATOMIC = """\
BUG: scheduling while atomic: kworker/0:2/87/0x00000002
Modules linked in: nvme nvme_core
Preemption disabled at:
[<ffffffffc0045f1b>] nvme_poll_irqdisable+0x2b/0x80 [nvme]
CPU: 0 PID: 87 Comm: kworker/0:2 Tainted: G        W          6.1.0 #1
Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.0-debian-1.16.0-5 04/01/2014
Workqueue: nvme-reset-wq nvme_reset_work [nvme]
Call Trace:
 <TASK>
 dump_stack_lvl+0x49/0x63
 __schedule_bug.cold+0x57/0x68
 __schedule+0x8a5/0xb90
 schedule+0x5d/0xe0
 schedule_timeout+0x93/0x150
 ? __bpf_trace_tick_stop+0x10/0x10
 msleep+0x29/0x40
 nvme_wait_ready+0x73/0xd0 [nvme_core]
 nvme_disable_ctrl+0x81/0xc0 [nvme_core]
 nvme_reset_work+0x176/0x1140 [nvme]
 process_one_work+0x1e5/0x3b0
 worker_thread+0x50/0x3a0
 ? rescuer_thread+0x390/0x390
 kthread+0xe8/0x110
 ? kthread_complete_and_exit+0x20/0x20
 ret_from_fork+0x22/0x30
 </TASK>
"""

SLEEPING_IN_ATOMIC = """\
BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580
in_atomic(): 1, irqs_disabled(): 1, non_block: 0, pid: 0, name: swapper/1
preempt_count: 10001, expected: 0
RCU nest depth: 0, expected: 0
INFO: lockdep is turned off.
irq event stamp: 84262
hardirqs last  enabled at (84261): [<ffffffff81d8ee54>] default_idle_call+0x54/0x1d0
hardirqs last disabled at (84262): [<ffffffff81d8b5ca>] common_interrupt+0x1a/0xc0
softirqs last  enabled at (84100): [<ffffffff81c001bd>] __do_softirq+0x1bd/0x2f0
softirqs last disabled at (84089): [<ffffffff810a1a4e>] irq_exit_rcu+0xce/0x120
CPU: 1 PID: 0 Comm: swapper/1 Not tainted 6.1.0 #1
Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.0-debian-1.16.0-5 04/01/2014
Call Trace:
 <IRQ>
 dump_stack_lvl+0x5b/0x77
 __might_resched.cold+0xff/0x13b
 __mutex_lock+0x4d/0x900
 ? nvme_complete_async_event+0x5d/0x120 [nvme_core]
 ? lock_is_held_type+0xe3/0x140
 mutex_lock_nested+0x16/0x20
 nvme_complete_async_event+0x5d/0x120 [nvme_core]
 nvme_process_cq+0x1c6/0x2a0 [nvme]
 nvme_irq+0x1f/0x60 [nvme]
 __handle_irq_event_percpu+0x44/0x1a0
 handle_irq_event+0x33/0x80
 handle_edge_irq+0x9e/0x240
 __common_interrupt+0x44/0xc0
 common_interrupt+0x9a/0xc0
 </IRQ>
 <TASK>
 asm_common_interrupt+0x22/0x40
RIP: 0010:default_idle+0xb/0x10
Code: 8b 04 25 c0 bb 01 00 f0 80 60 02 df c3 cc cc cc cc 0f 1f 44 00 00 eb 07 0f 00 2d d2
RSP: 0018:ffffc900000abef8 EFLAGS: 00000206
RAX: 0000000000000001 RBX: ffff888003231e00 RCX: 0000000000000000
 default_idle_call+0x5e/0x1d0
 do_idle+0x1e2/0x250
 cpu_startup_entry+0x19/0x20
 start_secondary+0x10d/0x130
 secondary_startup_64_no_verify+0xe5/0xeb
 </TASK>
"""

HUNG_TASKS = """\
INFO: task kworker/u4:1:53 blocked for more than 30 seconds.
      Not tainted 6.1.0 #1
"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.
task:kworker/u4:1    state:D stack:0     pid:53    ppid:2      flags:0x00004000
Workqueue: nvme-reset-wq nvme_reset_work [nvme]
Call Trace:
 <TASK>
 __schedule+0x2fa/0xb90
 schedule+0x5d/0xe0
 schedule_preempt_disabled+0x14/0x20
 __mutex_lock.constprop.0+0x3e7/0x900
 ? nvme_reset_work+0x5c/0x1140 [nvme]
 nvme_reset_work+0x5c/0x1140 [nvme]
 process_one_work+0x28c/0x5a0
 worker_thread+0x52/0x3b0
 ? process_one_work+0x5a0/0x5a0
 kthread+0xe9/0x110
 ? kthread_complete_and_exit+0x20/0x20
 ret_from_fork+0x22/0x30
 </TASK>
INFO: task fio:301 blocked for more than 30 seconds.
      Not tainted 6.1.0 #1
"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.
task:fio             state:D stack:0     pid:301   ppid:298    flags:0x00000002
Call Trace:
 <TASK>
 __schedule+0x2fa/0xb90
 schedule+0x5d/0xe0
 blk_queue_enter+0x1c3/0x250
 ? wake_up_bit+0x40/0x40
 blk_mq_submit_bio+0x3b5/0x5b0
 __submit_bio+0xf5/0x180
 submit_bio_noacct_nocheck+0x20d/0x2a0
 blkdev_direct_IO.part.0+0x2f5/0x5a0
 blkdev_read_iter+0xe7/0x180
 aio_read+0xf0/0x190
 io_submit_one+0x5d3/0xa20
 __x64_sys_io_submit+0x8b/0x190
 do_syscall_64+0x3b/0x90
 entry_SYSCALL_64_after_hwframe+0x63/0xcd
RIP: 0033:0x7f8a2f2a7ae9
RSP: 002b:00007f8a2c9fe4c8 EFLAGS: 00000246 ORIG_RAX: 00000000000000d1
RAX: ffffffffffffffda RBX: 00007f8a2c9ff640 RCX: 00007f8a2f2a7ae9
 </TASK>
Showing all locks held in the system:
1 lock held by khungtaskd/29:
 #0: ffffffff82b6c8a0 (rcu_read_lock){....}-{1:2}, at: debug_show_all_locks+0x12/0x1a0
"""

# Linux 4.19: no <TASK> markers, old task line; the report ends at the next unrelated line.
HUNG_TASK_OLD = """\
INFO: task kworker/u2:2:117 blocked for more than 120 seconds.
      Not tainted 4.19.0 #1
"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.
kworker/u2:2    D    0   117      2 0x80000000
Workqueue: nvme-wq nvme_scan_work [nvme_core]
Call Trace:
 ? __schedule+0x2a2/0x870
 schedule+0x28/0x80
 schedule_timeout+0x26d/0x390
 ? __switch_to_asm+0x40/0x70
 wait_for_completion+0x11f/0x190
 ? wake_up_q+0x70/0x70
 __flush_work+0x13a/0x1d0
 ? worker_detach_from_pool+0xb0/0xb0
 nvme_reset_ctrl_sync+0x3a/0x50 [nvme_core]
 nvme_scan_work+0x8f/0x330 [nvme_core]
 process_one_work+0x1a7/0x3a0
 worker_thread+0x30/0x390
 ? create_worker+0x1a0/0x1a0
 kthread+0x112/0x130
 ? kthread_bind+0x30/0x30
 ret_from_fork+0x35/0x40
nvme nvme0: I/O 12 QID 1 timeout, aborting
"""

LOCKDEP_CIRCULAR = """\

======================================================
WARNING: possible circular locking dependency detected
6.1.0 #1 Not tainted
------------------------------------------------------
kworker/u4:2/58 is trying to acquire lock:
ffff888004a98b30 (&ctrl->scan_lock){+.+.}-{3:3}, at: nvme_mpath_clear_ctrl_paths+0x1f/0xa0 [nvme_core]

but task is already holding lock:
ffff888004a98e88 (&ctrl->namespaces_rwsem){++++}-{3:3}, at: nvme_kill_queues+0x2a/0x140 [nvme_core]

which lock already depends on the new lock.


the existing dependency chain (in reverse order) is:

-> #1 (&ctrl->namespaces_rwsem){++++}-{3:3}:
       down_write+0x3f/0xd0
       nvme_scan_work+0x1b9/0x2c0 [nvme_core]
       process_one_work+0x28c/0x5a0
       worker_thread+0x52/0x3b0
       kthread+0xe9/0x110
       ret_from_fork+0x22/0x30

-> #0 (&ctrl->scan_lock){+.+.}-{3:3}:
       __lock_acquire+0x12a4/0x2180
       lock_acquire+0xc8/0x2d0
       __mutex_lock+0x9b/0x900
       nvme_mpath_clear_ctrl_paths+0x1f/0xa0 [nvme_core]
       nvme_remove_namespaces+0x3c/0x140 [nvme_core]
       nvme_remove_dead_ctrl_work+0x3a/0x50 [nvme]
       process_one_work+0x28c/0x5a0
       worker_thread+0x52/0x3b0
       kthread+0xe9/0x110
       ret_from_fork+0x22/0x30

other info that might help us debug this:

 Possible unsafe locking scenario:

       CPU0                    CPU1
       ----                    ----
  lock(&ctrl->namespaces_rwsem);
                               lock(&ctrl->scan_lock);
                               lock(&ctrl->namespaces_rwsem);
  lock(&ctrl->scan_lock);

 *** DEADLOCK ***

3 locks held by kworker/u4:2/58:
 #0: ffff888003c19938 ((wq_completion)nvme-wq){+.+.}-{0:0}, at: process_one_work+0x1f5/0x5a0
 #1: ffffc9000031fe78 ((work_completion)(&dev->remove_work)){+.+.}-{0:0}, at: process_one_work+0x1f5/0x5a0
 #2: ffff888004a98e88 (&ctrl->namespaces_rwsem){++++}-{3:3}, at: nvme_kill_queues+0x2a/0x140 [nvme_core]

stack backtrace:
CPU: 0 PID: 58 Comm: kworker/u4:2 Not tainted 6.1.0 #1
Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.0-debian-1.16.0-5 04/01/2014
Workqueue: nvme-wq nvme_remove_dead_ctrl_work [nvme]
Call Trace:
 <TASK>
 dump_stack_lvl+0x5b/0x77
 check_noncircular+0xfe/0x110
 __lock_acquire+0x12a4/0x2180
 lock_acquire+0xc8/0x2d0
 ? nvme_mpath_clear_ctrl_paths+0x1f/0xa0 [nvme_core]
 __mutex_lock+0x9b/0x900
 ? nvme_mpath_clear_ctrl_paths+0x1f/0xa0 [nvme_core]
 nvme_mpath_clear_ctrl_paths+0x1f/0xa0 [nvme_core]
 nvme_remove_namespaces+0x3c/0x140 [nvme_core]
 nvme_remove_dead_ctrl_work+0x3a/0x50 [nvme]
 process_one_work+0x28c/0x5a0
 worker_thread+0x52/0x3b0
 kthread+0xe9/0x110
 ret_from_fork+0x22/0x30
 </TASK>
"""

LOCKDEP_RECURSIVE = """\

============================================
WARNING: possible recursive locking detected
6.1.0 #1 Not tainted
--------------------------------------------
kworker/u4:1/53 is trying to acquire lock:
ffff888004a98b70 (&ctrl->lock){....}-{2:2}, at: nvme_change_ctrl_state+0x2e/0x2d0 [nvme_core]

but task is already holding lock:
ffff888004a98b70 (&ctrl->lock){....}-{2:2}, at: nvme_reset_work+0x44/0x1140 [nvme]

other info that might help us debug this:
 Possible unsafe locking scenario:

       CPU0
       ----
  lock(&ctrl->lock);
  lock(&ctrl->lock);

 *** DEADLOCK ***

 May be due to missing lock nesting notation

stack backtrace:
CPU: 1 PID: 53 Comm: kworker/u4:1 Not tainted 6.1.0 #1
Call Trace:
 <TASK>
 dump_stack_lvl+0x5b/0x77
 __lock_acquire.cold+0x15a/0x2b4
 lock_acquire+0xc8/0x2d0
 _raw_spin_lock_irqsave+0x3d/0x60
 nvme_change_ctrl_state+0x2e/0x2d0 [nvme_core]
 nvme_reset_work+0x5c/0x1140 [nvme]
 process_one_work+0x28c/0x5a0
 </TASK>
"""

LOCKDEP_INCONSISTENT = """\

================================
WARNING: inconsistent lock state
6.1.0 #1 Not tainted
--------------------------------
inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage.
kworker/0:1H/96 [HC0[0]:SC0[0]:HE1:SE1] takes:
ffff888004b61310 (&nvmeq->sq_lock){?.+.}-{2:2}, at: nvme_queue_rq+0x17c/0xc30 [nvme]
{IN-HARDIRQ-W} state was registered at:
  lock_acquire+0xc8/0x2d0
  _raw_spin_lock+0x2f/0x40
  nvme_irq+0x1f/0x60 [nvme]
  __handle_irq_event_percpu+0x44/0x1a0
irq event stamp: 2104
hardirqs last  enabled at (2103): [<ffffffff81d92d24>] _raw_spin_unlock_irq+0x24/0x40
hardirqs last disabled at (2104): [<ffffffff81d92a1a>] _raw_spin_lock_irq+0x5a/0x60

other info that might help us debug this:
 Possible unsafe locking scenario:

       CPU0
       ----
  lock(&nvmeq->sq_lock);
  <Interrupt>
    lock(&nvmeq->sq_lock);

 *** DEADLOCK ***

stack backtrace:
CPU: 0 PID: 96 Comm: kworker/0:1H Not tainted 6.1.0 #1
Call Trace:
 <TASK>
 dump_stack_lvl+0x5b/0x77
 mark_lock.part.0.cold+0x8b/0x9e
 lock_acquire+0xc8/0x2d0
 _raw_spin_lock+0x2f/0x40
 nvme_queue_rq+0x17c/0xc30 [nvme]
 </TASK>
"""

SUSPICIOUS_RCU = """\

=============================
WARNING: suspicious RCU usage
6.1.0 #1 Not tainted
-----------------------------
drivers/nvme/host/multipath.c:213 suspicious rcu_dereference_check() usage!

other info that might help us debug this:


rcu_scheduler_active = 2, debug_locks = 1
1 lock held by kworker/u4:1/53:
 #0: ffff888003c19938 ((wq_completion)nvme-wq){+.+.}-{0:0}, at: process_one_work+0x1f5/0x5a0

stack backtrace:
CPU: 1 PID: 53 Comm: kworker/u4:1 Not tainted 6.1.0 #1
Call Trace:
 <TASK>
 dump_stack_lvl+0x5b/0x77
 nvme_find_path+0x1a4/0x2e0 [nvme_core]
 nvme_ns_head_submit_bio+0x6c/0x270 [nvme_core]
 </TASK>
"""

KASAN_UAF = """\
==================================================================
BUG: KASAN: use-after-free in nvme_cancel_request+0x2b/0x80 [nvme_core]
Read of size 4 at addr ffff88800a4e2c18 by task kworker/u4:1/53

CPU: 1 PID: 53 Comm: kworker/u4:1 Not tainted 6.1.0 #1
Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.0-debian-1.16.0-5 04/01/2014
Workqueue: nvme-reset-wq nvme_reset_work [nvme]
Call Trace:
 <TASK>
 dump_stack_lvl+0x5b/0x77
 print_report+0x17f/0x47b
 ? nvme_cancel_request+0x2b/0x80 [nvme_core]
 kasan_report+0xbb/0xf0
 ? nvme_cancel_request+0x2b/0x80 [nvme_core]
 nvme_cancel_request+0x2b/0x80 [nvme_core]
 bt_tags_iter+0x1a3/0x220
 blk_mq_tagset_busy_iter+0x3b4/0x6c0
 nvme_dev_disable+0x2a5/0x6e0 [nvme]
 nvme_reset_work+0x1b5/0x2410 [nvme]
 process_one_work+0x8a2/0x1480
 worker_thread+0x5b1/0xf20
 kthread+0x2a4/0x340
 ret_from_fork+0x1f/0x30
 </TASK>

Allocated by task 1:
 kasan_save_stack+0x1e/0x40
 kasan_set_track+0x21/0x30
 __kasan_kmalloc+0x7a/0x90
 nvme_alloc_admin_tag_set+0x9b/0x3a0 [nvme_core]
 nvme_probe+0xa2e/0x1240 [nvme]

Freed by task 53:
 kasan_save_stack+0x1e/0x40
 kasan_set_track+0x21/0x30
 kasan_save_free_info+0x2a/0x50
 ____kasan_slab_free+0x169/0x1d0
 __kmem_cache_free+0xab/0x3b0
 nvme_dev_remove_admin+0x6f/0xa0 [nvme]

The buggy address belongs to the object at ffff88800a4e2c00
 which belongs to the cache kmalloc-256 of size 256
The buggy address is located 24 bytes inside of
 256-byte region [ffff88800a4e2c00, ffff88800a4e2d00)

The buggy address belongs to the physical page:
page:00000000b0f5ad06 refcount:1 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0xa4e2
head:00000000b0f5ad06 order:1 compound_mapcount:0 compound_pincount:0
flags: 0x100000000010200(slab|head|node=0|zone=1)
raw: 0100000000010200 0000000000000000 dead000000000122 ffff888001041b40
raw: 0000000000000000 0000000080100010 00000001ffffffff 0000000000000000
page dumped because: kasan: bad access detected

Memory state around the buggy address:
 ffff88800a4e2b00: fc fc fc fc fc fc fc fc fc fc fc fc fc fc fc fc
 ffff88800a4e2b80: fc fc fc fc fc fc fc fc fc fc fc fc fc fc fc fc
>ffff88800a4e2c00: fa fb fb fb fb fb fb fb fb fb fb fb fb fb fb fb
                            ^
 ffff88800a4e2c80: fb fb fb fb fb fb fb fb fb fb fb fb fb fb fb fb
 ffff88800a4e2d00: fc fc fc fc fc fc fc fc fc fc fc fc fc fc fc fc
==================================================================
Disabling lock debugging due to kernel taint
"""

KASAN_DOUBLE_FREE = """\
==================================================================
BUG: KASAN: double-free in kfree+0x8a/0x1a0
Free of addr ffff88800b1a6e00 by task kworker/u4:3/88

CPU: 0 PID: 88 Comm: kworker/u4:3 Not tainted 6.1.0 #1
Call Trace:
 <TASK>
 dump_stack_lvl+0x5b/0x77
 print_report+0x17f/0x47b
 kasan_report_invalid_free+0x9b/0xc0
 ____kasan_slab_free+0x18c/0x1d0
 __kmem_cache_free+0xab/0x3b0
 kfree+0x8a/0x1a0
 nvme_free_ns_head+0x55/0x70 [nvme_core]
 nvme_ns_remove+0x2a9/0x4c0 [nvme_core]
 </TASK>
==================================================================
"""

UBSAN_NEW = """\
================================================================================
UBSAN: shift-out-of-bounds in drivers/nvme/host/core.c:1698:38
shift exponent 64 is too large for 64-bit type 'long long unsigned int'
CPU: 0 PID: 87 Comm: kworker/u4:3 Not tainted 6.1.0 #1
Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.0-debian-1.16.0-5 04/01/2014
Workqueue: nvme-wq nvme_scan_work [nvme_core]
Call Trace:
 <TASK>
 dump_stack_lvl+0x49/0x63
 ubsan_epilogue+0x5/0x40
 __ubsan_handle_shift_out_of_bounds.cold+0x61/0xef
 nvme_update_ns_info.cold+0x23/0x2d [nvme_core]
 nvme_validate_or_alloc_ns+0x1e6/0x2f0 [nvme_core]
 nvme_scan_work+0x143/0x2c0 [nvme_core]
 process_one_work+0x1e5/0x3b0
 </TASK>
================================================================================
"""

UBSAN_OLD = """\
================================================================================
UBSAN: Undefined behaviour in drivers/nvme/host/core.c:1534:31
shift exponent 64 is too large for 64-bit type 'long long unsigned int'
CPU: 0 PID: 5 Comm: kworker/u2:0 Not tainted 4.19.0 #1
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.0-debian-1.16.0-5 04/01/2014
Workqueue: nvme-wq nvme_scan_work [nvme_core]
Call Trace:
 dump_stack+0x5c/0x7b
 ubsan_epilogue+0x9/0x3b
 __ubsan_handle_shift_out_of_bounds+0x102/0x14b
 nvme_update_disk_info+0x31e/0x390 [nvme_core]
 nvme_revalidate_disk+0x14c/0x190 [nvme_core]
 nvme_validate_ns+0x78/0x7d0 [nvme_core]
================================================================================
"""

SOFT_LOCKUP = """\
watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [kworker/0:1H:96]
Modules linked in: nvme nvme_core
irq event stamp: 123456
hardirqs last  enabled at (123455): [<ffffffff81e0142a>] asm_sysvec_apic_timer_interrupt+0x1a/0x20
hardirqs last disabled at (123456): [<ffffffff81d8b8d5>] sysvec_apic_timer_interrupt+0xb/0x90
softirqs last  enabled at (120012): [<ffffffff81c001bd>] __do_softirq+0x1bd/0x2f0
softirqs last disabled at (120001): [<ffffffff810a1a4e>] irq_exit_rcu+0xce/0x120
CPU: 0 PID: 96 Comm: kworker/0:1H Tainted: G             L     6.1.0 #1
Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.0-debian-1.16.0-5 04/01/2014
Workqueue: kblockd blk_mq_run_work_fn
RIP: 0010:nvme_poll_cq.isra.0+0x7e/0x3a0 [nvme]
Code: 0f b7 43 0c 66 41 39 c5 75 d1 8b 43 10 83 e0 01 41 38 c6 75 c6 0f 1f 44 00 00
RSP: 0018:ffffc90000803c48 EFLAGS: 00000246
RAX: 0000000000000000 RBX: ffff888004c3a000 RCX: 0000000000000001
RDX: 0000000000000000 RSI: 0000000000000000 RDI: ffff888004c3a000
RBP: ffff888004c3a000 R08: 0000000000000000 R09: 0000000000000000
R10: 0000000000000000 R11: 0000000000000000 R12: 0000000000000000
R13: 0000000000000000 R14: 0000000000000001 R15: ffffc90000803d10
FS:  0000000000000000(0000) GS:ffff88803ec00000(0000) knlGS:0000000000000000
CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
CR2: 00007f8a2c9fe000 CR3: 0000000004d8c000 CR4: 00000000000006f0
Call Trace:
 <TASK>
 nvme_poll+0x33/0x60 [nvme]
 blk_mq_poll+0x1b4/0x3a0
 blk_hctx_poll+0x2e/0x80
 iocb_bio_iopoll+0x45/0x60
 blkdev_iopoll+0x1d/0x30
 __x64_sys_io_getevents+0x6e/0x100
 do_syscall_64+0x3b/0x90
 entry_SYSCALL_64_after_hwframe+0x63/0xcd
 </TASK>
"""

RCU_SELF_STALL = """\
rcu: INFO: rcu_preempt self-detected stall on CPU
rcu: \t0-....: (21000 ticks this GP) idle=8c4c/1/0x4000000000000000 softirq=4077/4077 fqs=5239
\t(t=21002 jiffies g=4989 q=1034 ncpus=2)
NMI backtrace for cpu 0
CPU: 0 PID: 301 Comm: fio Not tainted 6.1.0 #1
Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.0-debian-1.16.0-5 04/01/2014
Call Trace:
 <IRQ>
 dump_stack_lvl+0x49/0x63
 nmi_cpu_backtrace.cold+0x30/0x70
 ? lapic_can_unplug_cpu+0x80/0x80
 nmi_trigger_cpumask_backtrace+0xbf/0xd0
 rcu_dump_cpu_stacks+0xc0/0x100
 rcu_sched_clock_irq.cold+0x4e/0x2a3
 ? trigger_load_balance+0x61/0x2f0
 update_process_times+0x5b/0x90
 tick_sched_handle+0x22/0x60
 tick_sched_timer+0x6f/0x80
 ? tick_sched_do_timer+0x90/0x90
 __hrtimer_run_queues+0x122/0x2c0
 hrtimer_interrupt+0xf4/0x210
 __sysvec_apic_timer_interrupt+0x5a/0x130
 sysvec_apic_timer_interrupt+0x6d/0x90
 </IRQ>
 <TASK>
 asm_sysvec_apic_timer_interrupt+0x16/0x20
RIP: 0010:nvme_process_cq+0x93/0x2a0 [nvme]
Code: 44 89 e0 c1 e0 04 48 03 43 28 0f b7 50 0e 66 d1 ea 41 38 d5 75 6c 0f 1f 44 00 00
RSP: 0018:ffffc90000837c30 EFLAGS: 00000246
RAX: ffff888004e34000 RBX: ffff888004c3a000 RCX: 0000000000000000
 ? nvme_process_cq+0x1c6/0x2a0 [nvme]
 nvme_poll+0x33/0x60 [nvme]
 blk_mq_poll+0x1b4/0x3a0
 </TASK>
rcu: rcu_preempt kthread starved for 10502 jiffies! g4989 f0x0 RCU_GP_WAIT_FQS(5)
"""

RCU_STALL = """\
rcu: INFO: rcu_sched detected stalls on CPUs/tasks:
rcu: \t1-...!: (0 ticks this GP) idle=b5c/1/0x4000000000000000 softirq=3319/3319 fqs=0
\t(detected by 0, t=21002 jiffies, g=4213, q=221 ncpus=2)
Sending NMI from CPU 0 to CPUs 1:
NMI backtrace for cpu 1
CPU: 1 PID: 96 Comm: kworker/1:1H Not tainted 6.1.0 #1
Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.0-debian-1.16.0-5 04/01/2014
Workqueue: kblockd blk_mq_requeue_work
RIP: 0010:native_queued_spin_lock_slowpath+0x5b/0x1d0
Code: 6d f0 0f ba 2f 08 0f 92 c0 0f b6 c0 c1 e0 08 89 c2 8b 07 30 e4 09 d0 a9 00 01 ff
RSP: 0018:ffffc90000123d30 EFLAGS: 00000002
RAX: 0000000000000101 RBX: ffff888004b61310 RCX: 0000000000000000
Call Trace:
 <TASK>
 _raw_spin_lock+0x2f/0x40
 nvme_queue_rq+0x17c/0xc30 [nvme]
 blk_mq_dispatch_rq_list+0x14d/0x7f0
 blk_mq_requeue_work+0x17b/0x1b0
 </TASK>
"""

HARD_LOCKUP = """\
NMI watchdog: Watchdog detected hard LOCKUP on cpu 1
Modules linked in: nvme nvme_core
CPU: 1 PID: 0 Comm: swapper/1 Not tainted 6.1.0 #1
Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.0-debian-1.16.0-5 04/01/2014
RIP: 0010:native_queued_spin_lock_slowpath+0x60/0x1d0
Code: 6d f0 0f ba 2f 08 0f 92 c0 0f b6 c0 c1 e0 08 89 c2 8b 07 30 e4 09 d0 a9 00 01 ff
RSP: 0018:ffffc900000c8f30 EFLAGS: 00000002
RAX: 0000000000000101 RBX: ffff888004b61310 RCX: 0000000000000000
Call Trace:
 <IRQ>
 _raw_spin_lock_irqsave+0x37/0x40
 nvme_irq+0x1f/0x80 [nvme]
 __handle_irq_event_percpu+0x44/0x1a0
 handle_irq_event+0x33/0x80
 handle_edge_irq+0x9e/0x240
 __common_interrupt+0x44/0xc0
 common_interrupt+0x9a/0xc0
 </IRQ>
 <TASK>
 asm_common_interrupt+0x22/0x40
RIP: 0010:default_idle+0xb/0x10
 default_idle_call+0x5e/0x1d0
 do_idle+0x1e2/0x250
 </TASK>
Kernel panic - not syncing: Hard LOCKUP
"""

SYSRQ_PANIC = """\
[  130.552145] sysrq: Trigger a crash
[  130.552713] Kernel panic - not syncing: sysrq triggered crash
[  130.553416] CPU: 0 PID: 1 Comm: sh Not tainted 6.1.0 #1
[  130.554066] Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.0-debian-1.16.0-5 04/01/2014
[  130.555310] Call Trace:
[  130.555640]  <TASK>
[  130.555926]  dump_stack_lvl+0x49/0x63
[  130.556388]  panic+0x11d/0x2b7
[  130.556786]  ? _printk+0x58/0x73
[  130.557205]  sysrq_handle_crash+0x16/0x20
[  130.557707]  __handle_sysrq.cold+0x43/0x11b
[  130.558235]  write_sysrq_trigger+0x24/0x40
[  130.558750]  proc_reg_write+0x51/0x90
[  130.559215]  vfs_write+0xc6/0x3a0
[  130.559644]  ksys_write+0x63/0xe0
[  130.560073]  do_syscall_64+0x3b/0x90
[  130.560527]  entry_SYSCALL_64_after_hwframe+0x63/0xcd
[  130.561140] RIP: 0033:0x7f3a8a1c3a37
[  130.561601] Code: 0f 00 f7 d8 64 89 02 48 c7 c0 ff ff ff ff eb b7 0f 1f 00 f3 0f 1e fa 64 8b 04 25
[  130.563834] RSP: 002b:00007ffdbf1c6b78 EFLAGS: 00000246 ORIG_RAX: 0000000000000001
[  130.564740]  </TASK>
[  130.565034] Kernel Offset: disabled
[  130.565470] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---
"""

# What a healthy reset-under-load run prints (dmesg, printk caller ids enabled).
HEALTHY = """\
[    0.000000][    T0] Linux version 6.1.0 (builder@ci) (gcc (Debian 12.2.0-14) 12.2.0) #1 SMP PREEMPT_DYNAMIC
[    0.000000][    T0] Command line: console=ttyS0 panic=-1 oops=panic softlockup_panic=1
[    0.012094][    T0] Kernel command line: console=ttyS0 panic=-1 oops=panic softlockup_panic=1
[    0.012345][    T0] Unknown kernel command line parameters "oops=panic", will be passed to user space.
[    0.094113][    T0] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar
[    0.094511][    T0] ... MAX_LOCKDEP_SUBCLASSES:  8
[    0.101000][    T0] rcu: Preemptible hierarchical RCU implementation.
[    0.101230][    T0] rcu: \tRCU event tracing is enabled.
[    0.101512][    T0] rcu: RCU calculated value of scheduler-enlistment delay is 100 jiffies.
[    0.140028][    T0] printk: console [ttyS0] enabled
[    0.214667][    T1] RAS: Correctable Errors collector initialized
[    0.231077][    T1] ACPI: bus type USB registered
[    0.260000][    T1] NMI watchdog: Perf NMI watchdog permanently disabled
[    0.270411][    T1] watchdog: Disabling watchdog on nohz_full cores by default
[    0.310500][    T1] ima: No TPM chip found, activating TPM-bypass!
[    0.322000][    T1] platform regulatory.0: Direct firmware load for regulatory.db failed with error -2
[    0.332110][    T1] cfg80211: failed to load regulatory.db
[    0.351000][    T1] x86/mm: Checked W+X mappings: passed, no W+X pages found.
[    0.402201][    T1] pci 0000:01:00.0: [1b36:0010] type 00 class 0x010802
[    0.540811][   T44] nvme nvme0: pci function 0000:01:00.0
[    0.561742][   T44] nvme nvme0: 1/0/0 default/read/poll queues
[    0.566001][   T44]  nvme0n1: p1
[    0.600000][    T1] Run /init as init process
[   12.345678][  T301] nvme nvme0: I/O 12 QID 1 timeout, aborting
[   12.346000][    C0] nvme nvme0: Abort status: 0x0
[   22.345678][  T301] nvme nvme0: I/O 12 QID 1 timeout, reset controller
[   22.346000][   T53] nvme nvme0: controller is down; will reset: CSTS=0x2, PCI_STATUS=0x10
[   22.401002][    C1] nvme0n1: I/O Cmd(0x2) @ LBA 0, 8 blocks, I/O Error (sct 0x2 / sc 0x81)
[   22.401100][    C1] blk_update_request: I/O error, dev nvme0n1, sector 0 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0
[   22.401200][    C1] I/O error, dev nvme0n1, sector 2048 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2
[   22.401300][    C1] Buffer I/O error on dev nvme0n1, logical block 0, async page read
[   22.402000][    C1] blk_print_req_error: 3 callbacks suppressed
[   22.450000][   T53] nvme nvme0: Shutdown timeout set to 10 seconds
[   22.460000][   T53] nvme nvme0: Device not ready; aborting reset, CSTS=0x1
[   22.470000][   T53] nvme nvme0: 1/0/0 default/read/poll queues
[   23.000000][   T88] pcieport 0000:00:02.0: pciehp: Slot(0): Attention button pressed
[   23.000100][   T88] pcieport 0000:00:02.0: pciehp: Slot(0): Powering off due to button press
[   28.000000][   T88] pcieport 0000:00:02.0: pciehp: Slot(0): Link Down
[   28.000100][   T88] nvme nvme0: Removing after probe failure status: -19
[   28.100000][  T301] EXT4-fs warning (device nvme0n1p1): ext4_end_bio:343: I/O error 10 writing to inode 12
[   28.200000][    T1] INFO: lockdep is turned off.
[   28.300000][  T310] sysrq: Show Memory
[   28.400000][  T310] random: crng init done
"""

# --------------------------------------------------------------------------- helpers


def _feed_all(text: str) -> list[Oops]:
    det = OopsDetector()
    return det.feed(text) + det.flush()


def _only(text: str) -> Oops:
    found = scan(text)
    assert len(found) == 1, [o.title for o in found]
    return found[0]


# --------------------------------------------------------------------------- prefixes


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("[   12.345678] nvme nvme0: I/O 12 QID 1 timeout", "nvme nvme0: I/O 12 QID 1 timeout"),
        ("[   12.345678]  nvme_reset_work+0x1a/0x40 [nvme]", " nvme_reset_work+0x1a/0x40 [nvme]"),
        (
            "<4>[   12.3] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x1/0x2",
            "WARNING: CPU: 0 PID: 1 at x.c:1 f+0x1/0x2",
        ),
        ("[   12.345678][   T42] Call Trace:", "Call Trace:"),
        ("[   12.345678] [    T42] Call Trace:", "Call Trace:"),
        ("[   12.345678][    C1]  <IRQ>", " <IRQ>"),
        ("[    T42] Oops: 0000 [#1] SMP", "Oops: 0000 [#1] SMP"),
        (
            "<0>Kernel panic - not syncing: Fatal exception\r",
            "Kernel panic - not syncing: Fatal exception",
        ),
        ("kern  :warn  : [   12.345678] RIP: 0010:f+0x1/0x2", "RIP: 0010:f+0x1/0x2"),
        (
            "4,1234,5678901,-;BUG: soft lockup - CPU#0 stuck for 22s!",
            "BUG: soft lockup - CPU#0 stuck for 22s!",
        ),
        ("[Mon Nov 21 18:31:00 2022] INFO: task a:1 blocked", "INFO: task a:1 blocked"),
        (
            "\x1b[0m[   12.3] ---[ end trace 0000000000000000 ]---  ",
            "---[ end trace 0000000000000000 ]---",
        ),
        ("nvme nvme0: Abort status: 0x0", "nvme nvme0: Abort status: 0x0"),
        ("[   12.345678] ", ""),
    ],
)
def test_strip_prefix(raw: str, expected: str) -> None:
    assert strip_prefix(raw) == expected


# --------------------------------------------------------------------------- every kind


@pytest.mark.parametrize(
    ("log", "kind", "title", "last"),
    [
        (WARNING_CONSOLE, "warning", "WARNING in nvme_reset_work", "---[ end trace"),
        (
            PAGE_FAULT_DMESG,
            "oops",
            "BUG: unable to handle page fault in nvme_queue_rq",
            "---[ end trace",
        ),
        (GPF_KASAN, "gpf", "general protection fault in blk_mq_run_hw_queue", "---[ end trace"),
        (KERNEL_BUG, "bug", "kernel BUG in nvme_pci_complete_rq", "---[ end trace"),
        (
            SCHEDULING_WHILE_ATOMIC,
            "bug",
            "BUG: scheduling while atomic in nvme_wait_ready",
            " </TASK>",
        ),
        (
            SLEEPING_IN_ATOMIC,
            "bug",
            "BUG: sleeping function called from invalid context in nvme_complete_async_event",
            " </TASK>",
        ),
        (HUNG_TASK_OLD, "hung_task", "INFO: task hung in nvme_reset_ctrl_sync", " ret_from_fork"),
        (
            LOCKDEP_CIRCULAR,
            "lockdep",
            "possible circular locking dependency detected",
            " </TASK>",
        ),
        (LOCKDEP_RECURSIVE, "lockdep", "possible recursive locking detected", " </TASK>"),
        (LOCKDEP_INCONSISTENT, "lockdep", "inconsistent lock state", " </TASK>"),
        (SUSPICIOUS_RCU, "lockdep", "suspicious RCU usage", " </TASK>"),
        (KASAN_UAF, "kasan", "KASAN: use-after-free in nvme_cancel_request", "=========="),
        (KASAN_DOUBLE_FREE, "kasan", "KASAN: double-free in nvme_free_ns_head", "=========="),
        (
            UBSAN_NEW,
            "ubsan",
            "UBSAN: shift-out-of-bounds in drivers/nvme/host/core.c:1698",
            "=========",
        ),
        (
            UBSAN_OLD,
            "ubsan",
            "UBSAN: Undefined behaviour in drivers/nvme/host/core.c:1534",
            "=========",
        ),
        (SOFT_LOCKUP, "soft_lockup", "BUG: soft lockup in nvme_poll_cq", " </TASK>"),
        (RCU_SELF_STALL, "rcu_stall", "INFO: rcu detected stall in nvme_process_cq", " </TASK>"),
        (RCU_STALL, "rcu_stall", "INFO: rcu detected stall in nvme_queue_rq", " </TASK>"),
    ],
)
def test_single_report(log: str, kind: str, title: str, last: str) -> None:
    oops = _only(log)
    assert (oops.kind, oops.title, oops.fatal, oops.count) == (kind, title, False, 1)
    assert oops.lines[-1].startswith(last)
    assert oops.header == oops.lines[0]
    assert not oops.header.startswith(("[", "<", " ")), "console prefix left in place"


def test_warning_report_lines_are_exact() -> None:
    (oops,) = _feed_all(WARNING_CONSOLE)
    expected = [strip_prefix(line) for line in WARNING_CONSOLE.split("\r\n")[1:] if line]
    assert list(oops.lines) == expected
    assert oops.lines[0] == (
        "WARNING: CPU: 1 PID: 53 at drivers/nvme/host/pci.c:2797"
        " nvme_reset_work+0x1f5/0x1140 [nvme]"
    )
    assert " </TASK>" in oops.lines
    assert not any("\r" in line for line in oops.lines)


def test_oops_then_fatal_exception_panic() -> None:
    found = _feed_all(NULL_DEREF_CONSOLE)
    assert [(o.kind, o.title, o.fatal) for o in found] == [
        ("oops", "BUG: kernel NULL pointer dereference in nvme_timeout", False),
        ("panic", "kernel panic: Fatal exception", True),
    ]
    oops = found[0]
    assert oops.lines[0] == "BUG: kernel NULL pointer dereference, address: 0000000000000048"
    assert "Oops: 0000 [#1] PREEMPT SMP NOPTI" in oops.lines  # die line joined, not a new report
    assert oops.lines[-1] == "---[ end trace 0000000000000000 ]---"
    assert found[1].lines == ("Kernel panic - not syncing: Fatal exception",)


def test_gpf_kasan_null_ptr_line_is_not_a_new_report() -> None:
    oops = _only(GPF_KASAN)
    assert oops.lines[1].startswith("KASAN: null-ptr-deref in range")
    assert len(oops.lines) == GPF_KASAN.count("\n")


def test_hung_tasks_end_at_task_marker() -> None:
    det = OopsDetector()
    found = det.feed(HUNG_TASKS)
    assert [o.title for o in found] == [
        "INFO: task hung in nvme_reset_work",
        "INFO: task hung in blk_queue_enter",
    ]
    assert all(o.kind == "hung_task" and o.lines[-1] == " </TASK>" for o in found)
    assert found[0].lines[0] == "INFO: task kworker/u4:1:53 blocked for more than 30 seconds."
    assert det.flush() == []
    assert not any("Showing all locks" in line for o in found for line in o.lines)


def test_old_hung_task_ends_at_first_unrelated_line() -> None:
    det = OopsDetector()
    (oops,) = det.feed(HUNG_TASK_OLD)  # returned before flush: the nvme line ended it
    assert oops.lines[-1] == " ret_from_fork+0x35/0x40"
    assert not any("nvme nvme0" in line for line in oops.lines)


def test_lockdep_report_spans_to_stack_backtrace() -> None:
    oops = _only(LOCKDEP_CIRCULAR)
    assert oops.lines[0] == "WARNING: possible circular locking dependency detected"
    assert " *** DEADLOCK ***" in oops.lines
    assert "stack backtrace:" in oops.lines


def test_kasan_report_includes_alloc_free_and_shadow() -> None:
    oops = _only(KASAN_UAF)
    assert (
        oops.lines[0] == "BUG: KASAN: use-after-free in nvme_cancel_request+0x2b/0x80 [nvme_core]"
    )
    assert "Freed by task 53:" in oops.lines
    assert "Memory state around the buggy address:" in oops.lines
    assert not any("Disabling lock debugging" in line for line in oops.lines)


@pytest.mark.parametrize(
    ("header", "title"),
    [
        (
            "WARNING: possible irq lock inversion dependency detected",
            "possible irq lock inversion dependency detected",
        ),
        ("WARNING: bad unlock balance detected!", "bad unlock balance detected"),
        (
            "WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected",
            "HARDIRQ-safe -> HARDIRQ-unsafe lock order detected",
        ),
        (
            "[ INFO: possible circular locking dependency detected ]",
            "possible circular locking dependency detected",
        ),
        ("INFO: trying to register non-static key.", "trying to register non-static key"),
    ],
)
def test_other_lockdep_headers(header: str, title: str) -> None:
    oops = _only(f"{header}\nstack backtrace:\nCall Trace:\n <TASK>\n f+0x1/0x2\n </TASK>\n")
    assert (oops.kind, oops.title) == ("lockdep", title)


def test_hard_lockup_then_panic() -> None:
    found = scan(HARD_LOCKUP)
    assert [(o.kind, o.title, o.fatal) for o in found] == [
        ("hard_lockup", "BUG: hard lockup in nvme_irq", False),
        ("panic", "kernel panic: Hard LOCKUP", True),
    ]
    assert found[0].lines[-1] == " </TASK>"


def test_buddy_hard_lockup_header() -> None:
    text = HARD_LOCKUP.replace(
        "NMI watchdog: Watchdog detected hard LOCKUP on cpu 1",
        "watchdog: CPU0: Watchdog detected hard LOCKUP on cpu 1",
    )
    assert scan(text)[0].title == "BUG: hard lockup in nvme_irq"


def test_old_soft_lockup_format() -> None:
    text = (
        "NMI watchdog: BUG: soft lockup - CPU#1 stuck for 23s! [fio:412]\n"
        "Modules linked in: nvme\n"
        "CPU: 1 PID: 412 Comm: fio Tainted: G             L  4.4.0 #1\n"
        "RIP: 0010:[<ffffffffc0031234>]  [<ffffffffc0031234>] nvme_process_cq+0x54/0x1d0 [nvme]\n"
        "RSP: 0018:ffff88003fd03e48  EFLAGS: 00000246\n"
        "Call Trace:\n"
        " <IRQ> \n"
        " [<ffffffffc00313f9>] nvme_irq+0x39/0x60 [nvme]\n"
        " [<ffffffff810c5f46>] ? handle_irq_event_percpu+0x86/0x1d0\n"
        " <EOI> \n"
        "nvme nvme0: I/O 3 QID 2 timeout, aborting\n"
    )
    oops = _only(text)
    assert (oops.kind, oops.title) == ("soft_lockup", "BUG: soft lockup in nvme_process_cq")
    assert oops.lines[-1] == " <EOI>"


@pytest.mark.parametrize(
    ("die_line", "kind", "title"),
    [
        ("general protection fault: 0000 [#1] SMP PTI", "gpf", "general protection fault in f"),
        (
            (
                "Oops: general protection fault, probably for non-canonical address"
                " 0x6b6b6b6b6b6b6b6b: 0000 [#1] PREEMPT SMP NOPTI"
            ),
            "gpf",
            "general protection fault in f",
        ),
        ("Oops: 0000 [#1] PREEMPT SMP NOPTI", "oops", "Oops in f"),
        ("stack segment: 0000 [#1] PREEMPT SMP KASAN", "oops", "stack segment in f"),
    ],
)
def test_die_lines_start_reports(die_line: str, kind: str, title: str) -> None:
    text = f"{die_line}\nRIP: 0010:f.constprop.0+0x1/0x2 [nvme]\n---[ end trace 0 ]---\n"
    oops = _only(text)
    assert (oops.kind, oops.title, len(oops.lines)) == (kind, title, 3)


def test_kernel_bug_with_new_oops_prefix() -> None:
    text = KERNEL_BUG.replace("invalid opcode: 0000", "Oops: invalid opcode: 0000")
    oops = _only(text)
    assert (oops.kind, oops.title) == ("bug", "kernel BUG in nvme_pci_complete_rq")
    assert oops.lines[1] == "Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI"


@pytest.mark.parametrize(
    ("header", "title"),
    [
        (
            "BUG: using smp_processor_id() in preemptible [00000000] code: kworker/0:1/42",
            "BUG: using smp_processor_id() in preemptible code in nvme_foo",
        ),
        (
            "BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!",
            "BUG: workqueue lockup in nvme_foo",
        ),
        ("BUG: spinlock bad magic on CPU#0, kworker/0:1/42", "BUG: spinlock bad magic in nvme_foo"),
        (
            "BUG: KCSAN: data-race in nvme_foo+0x1/0x2 [nvme] / nvme_bar.isra.0+0x3/0x4 [nvme]",
            "KCSAN: data-race in nvme_foo / nvme_bar",
        ),
    ],
)
def test_bug_titles(header: str, title: str) -> None:
    text = (
        f"{header}\nCPU: 0 PID: 42 Comm: kworker/0:1 Not tainted 6.1.0 #1\nCall Trace:\n <TASK>\n"
        " dump_stack_lvl+0x49/0x63\n check_preemption_disabled+0xd5/0xe0\n"
        " nvme_foo+0x1/0x2 [nvme]\n </TASK>\n"
    )
    assert _only(text).title == title


def test_new_warning_format_and_fallbacks() -> None:
    new = (
        "WARNING: drivers/nvme/host/core.c:542 at nvme_change_ctrl_state+0x1c4/0x2d0 [nvme_core],"
        " CPU#1: kworker/u4:1/53\n---[ end trace ]---\n"
    )
    assert _only(new).title == "WARNING in nvme_change_ctrl_state"
    no_func = "WARNING: CPU: 0 PID: 1 at drivers/nvme/host/core.c:7 0x0\n---[ end trace ]---\n"
    assert _only(no_func).title == "WARNING at drivers/nvme/host/core.c:7"


def test_unrelated_warning_lines_are_not_reports() -> None:
    text = (
        "WARNING: the mand mount option is being deprecated\n"
        "WARNING: clocksource tsc unstable\n"
        "warning: foo\n"
    )
    assert scan(text) == []


def test_arm64_fault() -> None:
    text = (
        "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008\n"
        "Mem abort info:\n"
        "  ESR = 0x0000000096000006\n"
        "Internal error: Oops: 0000000096000006 [#1] PREEMPT SMP\n"
        "Modules linked in: nvme nvme_core\n"
        "pc : nvme_pci_complete_batch+0x24/0xa0 [nvme]\n"
        "lr : nvme_irq+0x5c/0x80 [nvme]\n"
        "Call trace:\n"
        " nvme_pci_complete_batch+0x24/0xa0 [nvme]\n"
        " nvme_irq+0x5c/0x80 [nvme]\n"
        "---[ end trace 0000000000000000 ]---\n"
    )
    oops = _only(text)
    assert (oops.kind, oops.title) == (
        "oops",
        "BUG: unable to handle kernel NULL pointer dereference in nvme_pci_complete_batch",
    )
    assert len(oops.lines) == 11


# --------------------------------------------------------------------------- panics


def test_sysrq_panic() -> None:
    det = OopsDetector()
    found = det.feed(SYSRQ_PANIC)
    assert found == [
        Oops(
            kind="panic",
            title="kernel panic: sysrq triggered crash",
            lines=("Kernel panic - not syncing: sysrq triggered crash",),
            fatal=True,
        )
    ]
    assert det.panicked
    assert det.flush() == []
    assert det.found == found


def test_panic_returned_by_the_feed_that_completes_its_line() -> None:
    text = SYSRQ_PANIC.replace("\n", "\r\n")
    end = text.index("sysrq triggered crash\r") + len("sysrq triggered crash\r")
    for cut in range(len(text) + 1):
        det = OopsDetector()
        first = det.feed(text[:cut])
        assert det.panicked == (cut >= end), cut
        second = det.feed(text[cut:])
        assert [o.kind for o in first + second] == ["panic"], cut


def test_panic_on_warn_closes_the_warning_first() -> None:
    text = (
        "WARNING: CPU: 0 PID: 53 at drivers/nvme/host/core.c:542 nvme_foo+0x1/0x2 [nvme_core]\n"
        "Modules linked in: nvme nvme_core\n"
        "Kernel panic - not syncing: kernel: panic_on_warn set ...\n"
        "CPU: 0 PID: 53 Comm: kworker/u4:1 Not tainted 6.1.0 #1\n"
    )
    det = OopsDetector()
    found = det.feed(text)
    assert [(o.title, o.fatal) for o in found] == [
        ("WARNING in nvme_foo", False),
        ("kernel panic: kernel: panic_on_warn set ...", True),
    ]
    assert found[0].lines == tuple(text.splitlines()[:2])


# --------------------------------------------------------------------------- streaming


@pytest.mark.parametrize("log", [WARNING_CONSOLE, KASAN_DOUBLE_FREE, NULL_DEREF_CONSOLE])
def test_every_split_point_gives_the_same_reports(log: str) -> None:
    expected = _feed_all(log)
    assert expected
    for cut in range(len(log) + 1):
        det = OopsDetector()
        got = det.feed(log[:cut]) + det.feed(log[cut:]) + det.flush()
        assert got == expected, cut
        assert det.found == expected


def test_char_by_char_and_report_returned_at_end_marker() -> None:
    det = OopsDetector()
    end = WARNING_CONSOLE.index("]---\r\n") + len("]---\r")
    for i, ch in enumerate(WARNING_CONSOLE):
        got = det.feed(ch)
        if i + 1 == end:
            assert [o.title for o in got] == ["WARNING in nvme_reset_work"]
        else:
            assert got == [], i
    assert det.flush() == []
    assert len(det.found) == 1


def test_pending_report_needs_flush_at_end_of_stream() -> None:
    truncated = WARNING_CONSOLE[: WARNING_CONSOLE.index("[   42.143829]")]
    det = OopsDetector()
    assert det.feed(truncated) == []
    (oops,) = det.flush()
    assert oops.title == "WARNING in nvme_reset_work"
    assert oops.lines[-1].startswith("softirqs last disabled at")


def test_unterminated_last_line_is_processed_by_flush() -> None:
    det = OopsDetector()
    assert det.feed("[  1.0] Kernel panic - not syncing: VFS: Unable to mount root fs") == []
    (oops,) = det.flush()
    assert oops.title == "kernel panic: VFS: Unable to mount root fs"


def test_next_header_closes_report() -> None:
    text = SCHEDULING_WHILE_ATOMIC.split("Call Trace:")[0] + KASAN_DOUBLE_FREE
    found = scan(text)
    assert [o.kind for o in found] == ["bug", "kasan"]
    assert found[0].title == "BUG: scheduling while atomic"
    assert found[0].lines[-1] == "Workqueue: nvme-reset-wq nvme_reset_work [nvme]"


def test_report_bounded_in_length() -> None:
    header = "WARNING: CPU: 0 PID: 1 at drivers/nvme/host/core.c:1 nvme_foo+0x1/0x2 [nvme_core]\n"
    det = OopsDetector()
    got = det.feed(header + "Call Trace:\n" + " nvme_bar+0x1/0x2 [nvme]\n" * 500)
    assert len(got) == 1
    assert len(got[0].lines) == MAX_REPORT_LINES
    assert det.flush() == []


def test_report_ends_after_idle_lines_without_them() -> None:
    header = "BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!"
    noise = [f"nvme nvme0: I/O {i} QID 1 timeout, aborting" for i in range(IDLE_LINE_LIMIT + 5)]
    det = OopsDetector()
    got = det.feed("\n".join([header, *noise]) + "\n")
    assert [(o.title, o.lines) for o in got] == [("BUG: workqueue lockup", (header,))]


@pytest.mark.parametrize(
    "prefix",
    ["[{t}] ", "<4>[{t}] ", "[{t}][    T96] ", "[{t}] [    C1] ", "kern  :warn  : [{t}] "],
)
def test_prefix_styles_give_identical_reports(prefix: str) -> None:
    lines = GPF_KASAN.splitlines()
    text = "".join(
        prefix.format(t=f"{i:5d}.{i * 1031 % 999999:06d}") + line + "\r\n"
        for i, line in enumerate(lines)
    )
    assert _feed_all(text) == _feed_all(GPF_KASAN)


# --------------------------------------------------------------------------- duplicates


def test_repeated_warning_reported_once_with_count() -> None:
    other = WARNING_CONSOLE.replace("nvme_reset_work+0x1f5", "nvme_dev_disable+0x1f5")
    text = WARNING_CONSOLE * 3 + other + WARNING_CONSOLE
    det = OopsDetector()
    det.feed(text)
    assert len(det.found) == 5
    found = scan(text)
    assert [(o.title, o.count) for o in found] == [
        ("WARNING in nvme_reset_work", 4),
        ("WARNING in nvme_dev_disable", 1),
    ]
    assert dedupe(found) == found


# --------------------------------------------------------------------------- false positives


def test_healthy_nvme_log_has_no_reports() -> None:
    assert scan(HEALTHY) == []
    assert scan(HEALTHY.replace("\n", "\r\n")) == []


def test_sysrq_line_alone_is_not_a_report_but_its_panic_is() -> None:
    found = scan(HEALTHY + SYSRQ_PANIC)
    assert [(o.kind, o.title) for o in found] == [("panic", "kernel panic: sysrq triggered crash")]


def test_everything_together() -> None:
    logs = [
        HEALTHY,
        WARNING_CONSOLE,
        HUNG_TASKS,
        LOCKDEP_CIRCULAR,
        KASAN_UAF,
        UBSAN_NEW,
        SOFT_LOCKUP,
        RCU_SELF_STALL,
        NULL_DEREF_CONSOLE,
    ]
    det = OopsDetector()
    for log in logs:
        det.feed(log)
    det.flush()
    assert [o.kind for o in det.found] == [
        "warning",
        "hung_task",
        "hung_task",
        "lockdep",
        "kasan",
        "ubsan",
        "soft_lockup",
        "rcu_stall",
        "oops",
        "panic",
    ]
    assert det.panicked
