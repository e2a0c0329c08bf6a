#!/usr/bin/python3
"""UDP echo for the soak: returns every datagram's payload unchanged (the soak stream puts a
sequence number in it). Usage: seq-echo.py PORT ADDR [ADDR ...]   Prints "ready"."""
import select
import socket
import sys

port = int(sys.argv[1])
socks = []
for a in sys.argv[2:]:
    s = socket.socket(socket.AF_INET6 if ':' in a else socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((a, port))
    s.setblocking(False)
    socks.append(s)
print('ready', flush=True)
while True:
    r, _, _ = select.select(socks, [], [], 1.0)
    for s in r:
        while True:
            try:
                d, frm = s.recvfrom(4096)
            except BlockingIOError:
                break
            try:
                s.sendto(d, frm)
            except OSError:
                pass
