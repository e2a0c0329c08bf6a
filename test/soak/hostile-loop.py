#!/usr/bin/python3
"""The soak's invalid traffic: whole Ethernet frames (lines "<4|6> <hex>" of FRAMES_FILE) sent
round-robin on IFACE at PPS until STOP_FILE appears or MAX_SECONDS pass. Prints the count.
Usage: hostile-loop.py IFACE DST_MAC SRC_MAC PPS FRAMES_FILE STOP_FILE MAX_SECONDS"""
import os
import socket
import sys
import time

iface, dst, src = sys.argv[1], bytes.fromhex(sys.argv[2].replace(':', '')), bytes.fromhex(sys.argv[3].replace(':', ''))
pps, frames_file, stop_file, max_s = float(sys.argv[4]), sys.argv[5], sys.argv[6], float(sys.argv[7])
frames = []
for line in open(frames_file):
    line = line.strip()
    if line:
        fam, hx = line.split(' ', 1)
        frames.append(dst + src + (b'\x86\xdd' if fam == '6' else b'\x08\x00') + bytes.fromhex(hx))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
n = 0
t0 = time.monotonic()
nxt = t0
while True:
    now = time.monotonic()
    if now - t0 > max_s or (n % 100 == 0 and os.path.exists(stop_file)):
        break
    if now < nxt:
        time.sleep(min(0.05, nxt - now))
        continue
    s.send(frames[n % len(frames)])
    n += 1
    nxt += 1.0 / pps
print(n, flush=True)
