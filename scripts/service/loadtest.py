#!/usr/bin/env python3
"""Closed-loop load test of a running spectralx server (stdlib only).

    scripts/service/loadtest.py --url http://127.0.0.1:8080 --domain demo --tile tile.tif \
        --concurrency 8 --requests 32

Prints requests/s, latency p50/p90/p99, status counts, the X-SpectralX-Batch-Size distribution seen
by clients and the server's spectralx_batch_size histogram from /metrics.
"""
import argparse, collections, http.client, statistics, threading, time, urllib.parse


def post(url, path, body, ctype):
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=600)
    t0 = time.perf_counter()
    c.request("POST", path, body=body, headers={"Content-Type": ctype})
    r = c.getresponse()
    r.read()
    dt = time.perf_counter() - t0
    batch = r.getheader("X-SpectralX-Batch-Size")
    c.close()
    return r.status, dt, batch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--domain", default="demo")
    ap.add_argument("--tile", required=True)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--query", default="output=json")
    a = ap.parse_args()
    body = open(a.tile, "rb").read()
    ctype = "application/x-npy" if a.tile.endswith(".npy") else "image/tiff"
    path = f"/v1/domains/{a.domain}/segment?{a.query}"
    lock = threading.Lock()
    results, remaining = [], [a.requests]

    def worker():
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            r = post(a.url, path, body, ctype)
            with lock:
                results.append(r)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ok = sorted(dt for s, dt, _ in results if s == 200)
    q = lambda p: ok[min(len(ok) - 1, int(round(p * (len(ok) - 1))))] if ok else float("nan")
    print(f"{len(results)} requests, concurrency {a.concurrency}, {wall:.1f} s: {len(ok) / wall:.3f} requests/s (200s)")
    print(f"latency p50 {q(0.5):.2f} s  p90 {q(0.9):.2f} s  p99 {q(0.99):.2f} s  mean {statistics.mean(ok) if ok else float('nan'):.2f} s")
    print("statuses:", dict(collections.Counter(s for s, _, _ in results)))
    print("batch sizes seen by clients:", dict(sorted(collections.Counter(b for _, _, b in results).items())))
    u = urllib.parse.urlparse(a.url)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
    c.request("GET", "/metrics")
    for line in c.getresponse().read().decode().splitlines():
        if line.startswith("spectralx_batch_size_") or line.startswith("spectralx_queue_rejections_total"):
            print("  " + line)


if __name__ == "__main__":
    main()
