#!/usr/bin/env python3
"""Poll a running QEMU (extra HMP socket) for the I/O SQ 1 shadow tail and EventIdx in guest
memory; when they differ and neither moves for STALL seconds (the device is not fetching what
the driver published), dump the shadow/EventIdx page, the SQ ring slots between them and the
CQ 1 slots, once per stall."""
import glob, os, re, socket, sys, time
STALL = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
def hmp(path, cmds):
    s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(path)
    def rd():
        buf = b''; t0 = time.time()
        while time.time() - t0 < 3:
            try: d = s.recv(65536)
            except socket.timeout: break
            if not d: break
            buf += d
            if buf.rstrip().endswith(b'(qemu)'): break
        return buf
    out = rd()
    for c in cmds:
        s.sendall(c.encode() + b'\n'); out += rd()
    s.close()
    return re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', out.decode(errors='replace'))
def words(out):
    return [[int(x, 16) for x in re.findall(r'0x[0-9a-f]+', m.group(1))]
            for m in re.finditer(r'(?m)^[0-9a-f]{16}: (.*)$', out)]
state = {}
while True:
    for tr in glob.glob('/tmp/inv21/traces/trace-*.log'):
        pid = tr.split('-')[-1][:-4]
        sock = f'/tmp/inv21/hmp/hmp-{pid}.sock'
        if not os.path.exists(f'/proc/{pid}') or not os.path.exists(sock):
            continue
        txt = open(tr, errors='replace').read()
        db = re.findall(r'dbs_addr=(0x[0-9a-f]+) eis_addr=(0x[0-9a-f]+)', txt)
        sq = re.findall(r'pci_nvme_create_sq create submission queue, addr=(0x[0-9a-f]+), sqid=1,', txt)
        if not db or not sq:
            continue
        dbs, eis = db[-1]; sqa = sq[-1]
        try:
            out = hmp(sock, [f'xp /4wx {dbs}', f'xp /4wx {eis}'])
            w = words(out)
            if len(w) < 2: continue
            tail, ei = w[0][2], w[1][2]
        except Exception as e:
            print('poll error', pid, e, file=sys.stderr); continue
        now = time.time()
        st = state.setdefault(pid, {'key': None, 'since': now, 'dumped': set(), 'polls': 0, 'stalls': 0})
        st['polls'] += 1
        key = (dbs, tail, ei)
        if key != st['key']:
            st['key'] = key; st['since'] = now
        elif tail != ei and now - st['since'] >= STALL and key not in st['dumped']:
            st['dumped'].add(key); st['stalls'] += 1
            n = (tail - ei) % 1024
            cmds = [f'xp /4wx {dbs}', f'xp /4wx {eis}']
            for k in range(-2, n + 2):
                cmds.append(f'xp /1wx {hex(int(sqa, 16) + 64 * ((ei + k) % 1024))}')
            out2 = hmp(sock, cmds)
            fn = f'/tmp/inv21/dumps/stall-{pid}-{int(now)}.txt'
            with open(fn, 'w') as f:
                f.write(f'pid {pid} dbs {dbs} eis {eis} sq1 ring {sqa}\n')
                f.write(f'SQ1 shadow tail {tail} / SQ1 EventIdx {ei}, unchanged for {now - st["since"]:.1f}s\n')
                f.write('xp lines: shadow doorbells (SQ0 tail, CQ0 head, SQ1 tail, CQ1 head), EventIdx (same order), '
                        f'then SQ1 ring dword0 (cid<<16 | opcode) of slots {(ei - 2) % 1024}..{(ei + n + 1) % 1024}\n')
                f.write('\n'.join(l for l in out2.splitlines() if re.match(r'[0-9a-f]{16}:', l)) + '\n')
            print(time.strftime('%H:%M:%S'), 'STALL dump', fn, flush=True)
    time.sleep(0.5)
