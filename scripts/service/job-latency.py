#!/usr/bin/env python3
"""Latency of synchronous tile requests while a scene job runs (stdlib only).

    scripts/service/job-latency.py --url http://127.0.0.1:8080 --domain A --scene scene.tif \
        --tile tile.tif --requests 5 [--make-scene 1024x1024x32]

Submits the scene as a job, waits until its first window is done, then sends `--requests` synchronous
`/segment` requests one after another while the job runs, and reports their latency next to the batch
time (spectralx_batch_seconds from /metrics) and the job's own progress: the priority rule says a tile
waits for at most the batch already running, so tile latency ≈ its own batch + at most one job batch.
At the end it waits for the job, downloads the result and prints its size and the job's wall time.
`--make-scene WxHxC` writes a deterministic uint16 GeoTIFF scene first (needs numpy + tifffile).
"""
import argparse, http.client, json, statistics, sys, time, urllib.parse


def conn(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port or 80, timeout=3600)


def call(url, method, path, body=None, ctype=None):
    c = conn(url)
    headers = {"Content-Type": ctype} if ctype else {}
    t0 = time.perf_counter()
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    dt = time.perf_counter() - t0
    c.close()
    return r.status, dict(r.getheaders()), data, dt


def batch_stats(url):
    _, _, text, _ = call(url, "GET", "/metrics")
    s = n = 0.0
    for line in text.decode().splitlines():
        if line.startswith("spectralx_batch_seconds_sum"):
            s = float(line.split()[-1])
        elif line.startswith("spectralx_batch_seconds_count"):
            n = float(line.split()[-1])
    return s, n


def make_scene(path, spec):
    import numpy as np, tifffile
    w, h, c = (int(v) for v in spec.lower().split("x"))
    y, x = np.mgrid[0:h, 0:w]
    bands = [(1000 + 300 * np.sin((x + 7 * b) * 0.01) + 200 * np.cos(y * 0.013 + b)).astype(np.uint16) for b in range(c)]
    tifffile.imwrite(path, np.stack(bands), photometric="minisblack", planarconfig="separate",
                     tile=(256, 256), compression="deflate")
    print(f"wrote {path}: {w}x{h}x{c} uint16")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--domain", required=True)
    ap.add_argument("--scene", required=True)
    ap.add_argument("--tile", required=True)
    ap.add_argument("--requests", type=int, default=5)
    ap.add_argument("--make-scene")
    ap.add_argument("--out", default="job-result.tif")
    ap.add_argument("--dismiss", action="store_true", help="DELETE the job after the tile requests instead of waiting for it")
    a = ap.parse_args()
    if a.make_scene:
        make_scene(a.scene, a.make_scene)
    scene = open(a.scene, "rb").read()
    tile = open(a.tile, "rb").read()
    tctype = "application/x-npy" if a.tile.endswith(".npy") else "image/tiff"

    t_submit = time.perf_counter()
    st, hd, body, _ = call(a.url, "POST", f"/v1/domains/{a.domain}/jobs", scene, "image/tiff")
    if st != 201:
        sys.exit(f"submit: {st} {body[:300]!r}")
    job = json.loads(body)
    jid = job["jobID"]
    print(f"job {jid}: {job['windows_total']} windows, Location {hd.get('Location')}")
    while True:
        s = json.loads(call(a.url, "GET", f"/v1/jobs/{jid}")[2])
        if s["windows_done"] >= 1 or s["status"] in ("successful", "failed", "dismissed"):
            break
        time.sleep(0.2)
    s0, n0 = batch_stats(a.url)
    lat = []
    for i in range(a.requests):
        st, hd, body, dt = call(a.url, "POST", f"/v1/domains/{a.domain}/segment?output=json", tile, tctype)
        s = json.loads(call(a.url, "GET", f"/v1/jobs/{jid}")[2])
        lat.append(dt)
        print(f"  tile {i}: {st} {dt:.2f} s (batch size {hd.get('X-SpectralX-Batch-Size')}); job {s['status']} "
              f"{s['windows_done']}/{s['windows_total']} eta {s.get('eta_seconds')}")
    s1, n1 = batch_stats(a.url)
    per_batch = (s1 - s0) / (n1 - n0) if n1 > n0 else float("nan")
    med = statistics.median(lat)
    print(f"tile latency while the job runs: median {med:.2f} s, max {max(lat):.2f} s over {len(lat)} requests")
    print(f"mean batch time in that interval: {per_batch:.2f} s; median tile latency / batch time = {med / per_batch:.2f}")
    if a.dismiss:
        st, _, body, _ = call(a.url, "DELETE", f"/v1/jobs/{jid}")
        s = json.loads(body)
        print(f"dismissed: {st} {s['status']} at {s['windows_done']}/{s['windows_total']} windows")
        return
    while True:
        s = json.loads(call(a.url, "GET", f"/v1/jobs/{jid}")[2])
        if s["status"] in ("successful", "failed", "dismissed"):
            break
        time.sleep(0.5)
    wall = time.perf_counter() - t_submit
    st, hd, body, _ = call(a.url, "GET", f"/v1/jobs/{jid}/results")
    open(a.out, "wb").write(body)
    print(f"job: {s['status']}, {s['windows_total']} windows in {wall:.1f} s wall "
          f"({s['windows_total'] / wall:.2f} windows/s incl. the tiles); result {st}, {len(body)} bytes -> {a.out}")


if __name__ == "__main__":
    main()
