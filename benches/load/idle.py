#!/usr/bin/env python3
"""Holds N idle connections open against the server while a load test runs.

Each connection sends half a request head and nothing more, as a slow or hostile client
would. The server closes such a connection after its header-read timeout; this script
opens a new one in its place, so about N stay open throughout. The connections come from
eight loopback addresses (127.0.0.2-9), so that the per-address cap (1,000 by default)
is not what refuses them, and wrk's own connections (from 127.0.0.1) are not crowded out
by the per-address cap either. Prints how many were open, once every 10 s, to stderr.

    python3 benches/load/idle.py 2000 127.0.0.1 18089
"""

import resource
import selectors
import socket
import sys
import time

HEAD = b"GET /health HTTP/1.1\r\nHost: idle\r\n"


def main():
    n, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 256)), hard))
    sources = [f"127.0.0.{i}" for i in range(2, 10)]
    sel = selectors.DefaultSelector()
    opened = 0

    def open_one():
        nonlocal opened
        s = socket.socket()
        s.bind((sources[opened % len(sources)], 0))
        opened += 1
        try:
            s.connect((host, port))
            s.sendall(HEAD)
        except OSError:
            s.close()
            return
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)

    for _ in range(n):
        open_one()
    last = time.time()
    while True:
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:  # closed by the server (its timeout): replace it
                sel.unregister(s)
                s.close()
        while len(sel.get_map()) < n:
            open_one()
        if time.time() - last >= 10:
            print(f"idle connections open: {len(sel.get_map())}", file=sys.stderr, flush=True)
            last = time.time()


if __name__ == "__main__":
    main()
