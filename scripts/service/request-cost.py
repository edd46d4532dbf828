#!/usr/bin/env python3
"""What one interactive answer costs the file system, and its latency: starts `spectralx serve` (the
given binary) on loopback, sends one warm-up request, then traces every thread of the server with strace
while it answers N requests for the same tile one after another, and prints the files created (openat with
O_CREAT), fsync/fdatasync calls, renames and unlinks per request, and the latency median and range.

    scripts/service/request-cost.py --binary .build/release/spectralx --models STORE --domain B \
        --tile tileB-0.tif [--requests 20] [--port 18090] [--query 'output=tiff']

Needs strace (Debian's `strace`). Loopback only.
"""
import argparse
import http.client
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


def request(port, domain, body, query):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.perf_counter()
    conn.request("POST", f"/v1/domains/{domain}/segment" + (f"?{query}" if query else ""), body=body,
                 headers={"Content-Type": "image/tiff"})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {data[:200]!r}")
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", required=True)
    p.add_argument("--models", required=True)
    p.add_argument("--domain", required=True)
    p.add_argument("--tile", required=True)
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--port", type=int, default=18090)
    p.add_argument("--query", default="")
    a = p.parse_args()
    body = open(a.tile, "rb").read()
    server = subprocess.Popen([a.binary, "serve", "--models", a.models, "--host", "127.0.0.1", "--port", str(a.port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tempfile.NamedTemporaryFile(prefix="request-cost-", suffix=".strace", delete=False).name
    tracer = None
    try:
        for _ in range(300):
            try:
                c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=2)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            sys.exit("the server did not become ready")
        request(a.port, a.domain, body, a.query)  # warm-up: weights paged in, buffers allocated
        tids = os.listdir(f"/proc/{server.pid}/task")
        cmd = ["strace", "-f", "-qq", "-o", log, "-e", "trace=openat,open,creat,fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat"]
        for t in tids:
            cmd += ["-p", t]
        tracer = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # attached
        latencies = [request(a.port, a.domain, body, a.query) for _ in range(a.requests)]
    finally:
        if tracer:
            tracer.terminate()
            tracer.wait()
        server.terminate()
        server.wait()
    text = open(log).read()
    os.unlink(log)
    created = len(re.findall(r"open(?:at)?\(.*O_CREAT", text)) + len(re.findall(r"\bcreat\(", text))
    fsyncs = len(re.findall(r"\bf(?:data)?sync\(", text))
    renames = len(re.findall(r"\brename(?:at2?)?\(", text))
    unlinks = len(re.findall(r"\bunlink(?:at)?\(", text))
    n = a.requests
    print(f"{n} requests of {a.tile} ({len(body)} bytes) to {a.domain}:")
    print(f"  files created {created} ({created / n:.1f} per request), fsync/fdatasync {fsyncs} ({fsyncs / n:.1f}), "
          f"renames {renames} ({renames / n:.1f}), unlinks {unlinks} ({unlinks / n:.1f})")
    print(f"  latency median {statistics.median(latencies) * 1000:.0f} ms, min {min(latencies) * 1000:.0f}, "
          f"max {max(latencies) * 1000:.0f}")


if __name__ == "__main__":
    main()
