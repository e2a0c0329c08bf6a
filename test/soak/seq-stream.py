#!/usr/bin/python3
"""The soak's valid traffic: one UDP flow per (src, dst) at a fixed rate, each datagram carrying
its flow's sequence number; an echo (seq-echo.py) returns it. Counts per flow what was sent,
which sequence numbers came back (lost = never came back, dup = came back twice).
Usage: seq-stream.py '<json: {flows: [[src, dst], ...], port, pps, stopFile, reportEvery}>'
Prints "started", a JSON progress line every reportEvery seconds, and a final JSON line after
the stop file appears (it keeps receiving 3 s after the last send)."""
import json
import os
import select
import socket
import struct
import sys
import time

o = json.loads(sys.argv[1])
flows = []
for src, dst in o['flows']:
    s = socket.socket(socket.AF_INET6 if ':' in dst else socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((src, 0))
    s.connect((dst, o['port']))
    s.setblocking(False)
    flows.append({'sock': s, 'src': src, 'sent': 0, 'got': bytearray(1 << 20), 'received': 0, 'dup': 0, 'errors': 0, 'bad': 0, 'last': None, 'maxGap': 0.0, 'maxGapAt': 0.0})
byfd = {f['sock'].fileno(): f for f in flows}
pad = b'\0' * 56
gap = 1.0 / o['pps']
t0 = time.monotonic()
nxt = t0
report = t0 + o['reportEvery']
stopped = None
print('started', flush=True)


def summary(final):
    out = []
    for f in flows:
        d = {'src': f['src'], 'sent': f['sent'], 'received': f['received'], 'dup': f['dup'], 'errors': f['errors'], 'bad': f['bad'],
             'maxGapMs': round(f['maxGap'] * 1000), 'maxGapAtS': round(f['maxGapAt'] - t0, 1)}
        if final:
            missing = [i for i in range(f['sent']) if not f['got'][i]]
            d['lost'] = len(missing)
            d['firstLost'] = missing[:10]
            # when the first lost datagram was sent (seconds after the start)
            d['firstLostAtS'] = round(missing[0] * gap, 1) if missing else None
        out.append(d)
    return out


while True:
    now = time.monotonic()
    if stopped is None and os.path.exists(o['stopFile']):
        stopped = now
    if stopped is not None and now - stopped > 3.0:
        break
    if stopped is None:
        while now >= nxt:
            for f in flows:
                try:
                    f['sock'].send(struct.pack('!Q', f['sent']) + pad)
                except OSError:
                    f['errors'] += 1
                f['sent'] += 1
            nxt += gap
    if now >= report:
        print(json.dumps({'t': round(now - t0, 1), 'flows': summary(False)}), flush=True)
        report += o['reportEvery']
    r, _, _ = select.select([f['sock'] for f in flows], [], [], max(0.0, min(0.05, nxt - time.monotonic())) if stopped is None else 0.05)
    for s in r:
        f = byfd[s.fileno()]
        while True:
            try:
                d = s.recv(4096)
            except BlockingIOError:
                break
            except OSError:
                f['errors'] += 1
                break
            if len(d) != 64:
                f['bad'] += 1
                continue
            (seq,) = struct.unpack('!Q', d[:8])
            t = time.monotonic()
            if f['last'] is not None and t - f['last'] > f['maxGap']:
                f['maxGap'] = t - f['last']
                f['maxGapAt'] = t
            f['last'] = t
            if seq >= len(f['got']):
                f['bad'] += 1
            elif f['got'][seq]:
                f['dup'] += 1
            else:
                f['got'][seq] = 1
                f['received'] += 1
print(json.dumps({'final': True, 'seconds': round(time.monotonic() - t0, 1), 'flows': summary(True)}), flush=True)
