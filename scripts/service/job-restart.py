#!/usr/bin/env python3
"""A scene job survives SIGTERM and kill -9 of the real server process (stdlib + numpy/tifffile).

    scripts/service/job-restart.py --spectralx .build/release/spectralx --models STORE --domain syn \
        --scene scene.tif [--port 18431]

1. uninterrupted: serve, submit the scene as a job, wait, download -> reference labels
2. SIGTERM while the job runs (after its first window), check the server exits and job.json is queued
   again, restart on the same --jobs-dir, wait, download, compare with the reference
3. the same with kill -9 (job.json says running, a partial result may exist)
Also compares the reference with `spectralx predict --mode tile` on the same file.
Prints the windows done at each interruption and whether the outputs are equal.
"""
import argparse, http.client, json, os, shutil, signal, subprocess, sys, tempfile, time


def call(port, method, path, body=None, ctype=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request(method, path, body=body, headers={"Content-Type": ctype} if ctype else {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def serve(a, jobs_dir, log):
    p = subprocess.Popen([a.spectralx, "serve", "--models", a.models, "--port", str(a.port), "--jobs-dir", jobs_dir,
                          "--max-batch", "1"], stdout=log, stderr=log)
    for _ in range(600):
        try:
            if call(a.port, "GET", "/readyz")[0] == 200:
                return p
        except OSError:
            pass
        time.sleep(0.1)
    p.kill()
    sys.exit("server did not become ready")


def status(port, jid):
    return json.loads(call(port, "GET", f"/v1/jobs/{jid}")[1])


def wait(port, jid, pred, timeout=3600):
    end = time.time() + timeout
    while time.time() < end:
        s = status(port, jid)
        if pred(s):
            return s
        time.sleep(0.2)
    sys.exit(f"timeout waiting for job {jid}")


def labels(path):
    import tifffile
    return tifffile.imread(path)


def run(a, interrupt, workdir):
    import numpy as np
    jobs_dir = os.path.join(workdir, f"jobs-{interrupt or 'plain'}")
    log = open(os.path.join(workdir, f"serve-{interrupt or 'plain'}.log"), "ab")
    p = serve(a, jobs_dir, log)
    st, body = call(a.port, "POST", f"/v1/domains/{a.domain}/jobs", open(a.scene, "rb").read(), "image/tiff")
    assert st == 201, (st, body[:200])
    jid = json.loads(body)["jobID"]
    note = ""
    if interrupt:
        s = wait(a.port, jid, lambda s: s["windows_done"] >= a.interrupt_at)
        t0 = time.time()
        p.send_signal(signal.SIGTERM if interrupt == "term" else signal.SIGKILL)
        rc = p.wait(timeout=600)
        rec = json.load(open(os.path.join(jobs_dir, jid, "job.json")))
        note = (f"{interrupt}: at {s['windows_done']}/{s['windows_total']} windows; exit {rc} after {time.time() - t0:.1f} s; "
                f"job.json status {rec['status']} windows_done {rec['windows_done']} rows_done {rec.get('rows_done')}; "
                f"files {sorted(os.listdir(os.path.join(jobs_dir, jid)))}")
        p = serve(a, jobs_dir, log)
    t0 = time.time()
    if interrupt:
        s = wait(a.port, jid, lambda s: s["status"] != "accepted")
        note += f"; after restart it reports {s['windows_done']}/{s['windows_total']} ({s['message']!r})"
    s = wait(a.port, jid, lambda s: s["status"] in ("successful", "failed", "dismissed"))
    out = os.path.join(workdir, f"result-{interrupt or 'plain'}.tif")
    st, body = call(a.port, "GET", f"/v1/jobs/{jid}/results")
    open(out, "wb").write(body)
    metrics = call(a.port, "GET", "/metrics")[1].decode()
    computed = [l for l in metrics.splitlines() if l.startswith("spectralx_job_windows_total ")]
    note += f"; windows computed by the restarted server: {computed[0].split()[-1] if computed else '?'}"
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=600)
    return s, out, note, time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spectralx", default=".build/release/spectralx")
    ap.add_argument("--models", required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--scene", required=True)
    ap.add_argument("--port", type=int, default=18431)
    ap.add_argument("--interrupt-at", type=int, default=1, help="windows done when the server is stopped")
    a = ap.parse_args()
    import numpy as np
    workdir = tempfile.mkdtemp(prefix="spectralx-job-restart-")
    try:
        ref_status, ref, _, _ = run(a, None, workdir)
        print(f"uninterrupted: {ref_status['status']} ({ref_status['windows_total']} windows)")
        pred = os.path.join(workdir, "predict.tif")
        subprocess.run([a.spectralx, "predict", "--models", a.models, "--domain", a.domain, "--mode", "tile",
                        a.scene, "-o", pred], check=True, capture_output=True)
        same = np.array_equal(labels(ref), labels(pred))
        print(f"job result == spectralx predict --mode tile: {same}")
        for kind in ("term", "kill"):
            s, out, note, _ = run(a, kind, workdir)
            print(note)
            print(f"  after restart: {s['status']}, attempts message: {s['message']!r}; "
                  f"labels equal to uninterrupted: {np.array_equal(labels(ref), labels(out))}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
