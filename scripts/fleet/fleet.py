#!/usr/bin/env python3
"""A local spectralx fleet on loopback: PostgreSQL (scripts/postgres/start.sh), an S3-compatible blob
store (moto's server mode), N `spectralx serve` replicas each with a jobs directory of its own (nothing
shared on disk: job state in the database, inputs, row bands and results in the blob store), and nginx
round-robin in front.

    scripts/fleet/fleet.py up    [--replicas 3] [--models STORE] [--blob-store s3|file]   # Ctrl-C stops it
    scripts/fleet/fleet.py drill [--replicas 3] [--jobs 6] [--models STORE] [--blob-store s3|file]

`drill` (what CI runs, every loop bounded): submits the jobs through the front; polls every job's status
through the front (counting any 404); `kill -9`s the replica running a job once it has committed a row
band and `SIGTERM`s another running one; then stops PostgreSQL for --outage seconds while two more jobs
run (tile requests must keep answering 200, job routes 503 with Retry-After); then freezes (SIGSTOP) the
replica running a job until another has finished it, thaws it, and checks it wrote nothing. It checks that every job
finished exactly once (the job table's finished_count) with the result of an uninterrupted run of the same
scene, and reports submit-to-done per job and the takeover delays. Exit status 0 when all holds.

Without --models a synthetic store (4 bands, 3 classes) is written once into $SPECTRALX_CACHE or
~/.cache/spectralx/fleet-store. `--blob-store file` uses a directory all replicas see
(file://<work>/blobs) instead of moto. Loopback only; nothing is downloaded.
"""
import argparse
import hashlib
import http.client as httpclient
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, ".build", "release", "spectralx")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def call(port, method, path, body=None, headers=None, timeout=120):
    c = httpclient.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict(r.getheaders()), data


def psql(url, sql):
    out = subprocess.run(["psql", url, "-tAc", sql], capture_output=True, text=True, check=True).stdout
    return [line.split("|") for line in out.strip().splitlines() if line]


def wait_until(what, timeout, fn, interval=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout} s waiting for {what}")


def scene_npy(height, width=224, bands=4):
    """A deterministic (bands, height, width) float32 .npy scene."""
    import struct
    n = bands * height * width
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, %d), }" % (bands, height, width)
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    raw = struct.pack("<%df" % n, *[((i * 7919) % 1000) / 1000.0 for i in range(n)])
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + raw


class Fleet:
    def __init__(self, replicas, models, base_port, lease, heartbeat, blob_kind="s3"):
        self.n, self.models, self.base = replicas, models, base_port
        self.blob_kind, self.moto, self.blob_env = blob_kind, None, {}
        self.lease, self.heartbeat = lease, heartbeat
        self.work = tempfile.mkdtemp(prefix="spectralx-fleet-")
        os.chmod(self.work, 0o711)  # PostgreSQL runs as its own user and must reach its data directory inside
        self.jobs_dir = os.path.join(self.work, "jobs")
        self.procs = {}
        self.pg_dir = os.path.join(self.work, "pg")
        self.nginx = None
        self.front = base_port

    def start(self):
        os.makedirs(self.jobs_dir)
        self.db = subprocess.run([os.path.join(ROOT, "scripts/postgres/start.sh"), self.pg_dir, str(self.base + 100)],
                                 capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        log(f"PostgreSQL at {self.db}")
        self.start_blob_store()
        for i in range(self.n):
            self.start_replica(i)
        for i in range(self.n):
            wait_until(f"replica {i} ready", 600, lambda i=i: self.ready(self.base + 1 + i))
        self.start_nginx()
        log(f"front (nginx round-robin over {self.n} replicas): http://127.0.0.1:{self.front}")

    def start_blob_store(self):
        """moto_server on loopback with a bucket (s3), or a directory every replica sees (file)."""
        if self.blob_kind == "file":
            blobs = os.path.join(self.work, "blobs")
            os.makedirs(blobs)
            self.blob_env = {"SPECTRALX_BLOB_STORE": "file://" + blobs}
            log(f"blob store: file://{blobs}")
            return
        moto = shutil.which("moto_server")
        if not moto:
            raise SystemExit("moto_server not found: scripts/setup.sh --test installs moto[server]")
        port = self.base + 200
        self.moto = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)],
                                     stdout=open(os.path.join(self.work, "moto.log"), "ab"), stderr=subprocess.STDOUT)
        endpoint = f"http://127.0.0.1:{port}"

        def up():
            try:
                return call(port, "GET", "/moto-api/", timeout=2)[0] == 200
            except OSError:
                return False
        wait_until("moto_server", 60, up)
        # moto in its default mode takes any credentials; the bucket is made with an unsigned PUT.
        urllib.request.urlopen(urllib.request.Request(endpoint + "/spectralx-fleet", method="PUT"), timeout=10).read()
        self.blob_env = {"SPECTRALX_BLOB_STORE": "s3://spectralx-fleet/jobs", "AWS_ENDPOINT_URL_S3": endpoint,
                         "AWS_ACCESS_KEY_ID": "fleet-drill", "AWS_SECRET_ACCESS_KEY": "fleet-drill-secret", "AWS_REGION": "us-east-1"}
        log(f"blob store: s3://spectralx-fleet/jobs on moto at {endpoint}")

    def start_replica(self, i):
        port = self.base + 1 + i
        # A jobs directory per replica: a replica taking a job over needs nothing from another's disk.
        jobs_dir = os.path.join(self.jobs_dir, f"replica{i}")
        env = dict(os.environ, SPECTRALX_JOBS_DB=self.db, SPECTRALX_REPLICA_ID=f"replica{i}", SPECTRALX_JOBS_DIR=jobs_dir,
                   SPECTRALX_JOB_LEASE=self.lease, SPECTRALX_JOB_HEARTBEAT=self.heartbeat, SPECTRALX_LOG_LEVEL="info",
                   **self.blob_env)
        out = open(os.path.join(self.work, f"replica{i}.log"), "ab")
        self.procs[i] = subprocess.Popen([BIN, "serve", "--models", self.models, "--host", "127.0.0.1", "--port", str(port),
                                          "--drain-timeout", "20"], env=env, stdout=out, stderr=subprocess.STDOUT)

    @staticmethod
    def ready(port):
        try:
            return call(port, "GET", "/readyz", timeout=2)[0] == 200
        except OSError:
            return False

    def start_nginx(self):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(nginx):
            raise SystemExit("nginx not found: scripts/setup.sh --test installs it")
        conf = os.path.join(self.work, "nginx.conf")
        servers = "\n".join(f"        server 127.0.0.1:{self.base + 1 + i} max_fails=0;" for i in range(self.n))
        with open(conf, "w") as f:
            f.write(f"""daemon off;
worker_processes 1;
error_log {self.work}/nginx-error.log;
pid {self.work}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {self.work}/nginx-body;
    proxy_temp_path {self.work}/nginx-proxy;
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_next_upstream error timeout non_idempotent;
    upstream spectralx {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{self.front};
        location / {{ proxy_pass http://spectralx; proxy_read_timeout 600s; }}
    }}
}}
""")
        self.nginx = subprocess.Popen([nginx, "-c", conf, "-p", self.work], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until("nginx", 20, lambda: self.ready(self.front))

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.nginx:
            self.nginx.terminate()
            self.nginx.wait()
        if self.moto:
            self.moto.terminate()
            try:
                self.moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.moto.kill()
                self.moto.wait()
        subprocess.run([os.path.join(ROOT, "scripts/postgres/stop.sh"), self.pg_dir, "--keep"], check=False)
        shutil.rmtree(self.work, ignore_errors=True)


def default_store():
    cache = os.environ.get("SPECTRALX_CACHE") or os.path.expanduser("~/.cache/spectralx")
    store = os.path.join(cache, "fleet-store")
    if not os.path.exists(os.path.join(store, "domains", "fleet", "domain.json")):
        log(f"writing a synthetic store into {store} (once)")
        subprocess.run([BIN, "synth", "-o", store, "--domain", "fleet", "--bands", "4", "--classes", "3"], check=True,
                       stdout=subprocess.DEVNULL)
    return store


def submit(port, body):
    status, headers, data = call(port, "POST", "/v1/domains/fleet/jobs?overlap=0", body=body,
                                 headers={"Content-Type": "application/x-npy"})
    if status != 201:
        raise SystemExit(f"submit: HTTP {status}: {data[:300]!r}")
    return json.loads(data)["jobID"]


def drill(a):
    models = a.models or default_store()
    fleet = Fleet(a.replicas, models, a.port, a.lease, a.heartbeat, a.blob_store)
    failures = []
    try:
        fleet.start()
        body = scene_npy(a.height)
        # The reference: one job alone, uninterrupted.
        t0 = time.time()
        ref = submit(fleet.front, body)
        wait_until("the reference job", 900, lambda: json.loads(call(fleet.front, "GET", f"/v1/jobs/{ref}")[2])["status"] == "successful")
        expected = hashlib.sha256(call(fleet.front, "GET", f"/v1/jobs/{ref}/results")[2]).hexdigest()
        log(f"reference job {ref}: {time.time() - t0:.1f} s, result sha256 {expected[:16]}")

        submitted = {}
        for _ in range(a.jobs):
            submitted[submit(fleet.front, body)] = time.time()
        log(f"{a.jobs} jobs submitted through the front")
        polls = {"200": 0, "404": 0, "other": 0}
        done_at, killed, termed, takeovers = {}, None, None, []

        def poll():
            for job in submitted:
                if job in done_at:
                    continue
                status, _, data = call(fleet.front, "GET", f"/v1/jobs/{job}")
                key = str(status) if status in (200, 404) else "other"
                polls[key] += 1
                if status == 200 and json.loads(data)["status"] in ("successful", "failed"):
                    done_at[job] = time.time()

        deadline = time.time() + 1800
        while len(done_at) < len(submitted) and time.time() < deadline:
            poll()
            running = psql(fleet.db, "SELECT job_id, lease_owner, progress_rows, lease_generation, "
                                     "COALESCE(jsonb_array_length(record->'spool_bands'), 0) FROM spectralx_jobs "
                                     "WHERE status = 'running' ORDER BY job_id")
            if killed is None:
                # Once a row band is committed (in the blob store and listed in the record): the takeover
                # must continue from it.
                for job, owner, rows, gen, bands in running:
                    if int(bands) > 0 and job in submitted:
                        i = int(owner.replace("replica", ""))
                        fleet.procs[i].send_signal(signal.SIGKILL)
                        killed = (job, i, time.time(), int(gen))
                        log(f"kill -9 replica{i} while it runs {job} at row {rows}, {bands} row band(s) committed")
                        break
            elif termed is None:
                for job, owner, rows, gen, bands in running:
                    i = int(owner.replace("replica", ""))
                    if job in submitted and i != killed[1] and job != killed[0]:
                        fleet.procs[i].send_signal(signal.SIGTERM)
                        termed = (job, i, time.time(), int(gen))
                        log(f"SIGTERM replica{i} while it runs {job} at row {rows}")
                        break
            for which in (killed, termed):
                if which and not any(t[0] == which[0] for t in takeovers):
                    row = psql(fleet.db, f"SELECT lease_generation, lease_owner FROM spectralx_jobs WHERE job_id = '{which[0]}'")
                    if row and int(row[0][0]) > which[3]:
                        takeovers.append((which[0], time.time() - which[2], row[0][1]))
                        log(f"job {which[0]} taken over by {row[0][1]} {time.time() - which[2]:.1f} s after the signal")
            time.sleep(0.5)
        poll()
        # Checks.
        if len(done_at) < len(submitted):
            failures.append(f"{len(submitted) - len(done_at)} jobs did not finish")
        if polls["404"]:
            failures.append(f"{polls['404']} status polls through the front answered 404")
        rows = psql(fleet.db, "SELECT job_id, status, finished_count FROM spectralx_jobs")
        for job, status, count in rows:
            if job in submitted or job == ref:
                if status != "successful" or int(count) != 1:
                    failures.append(f"job {job}: {status}, finished {count} times")
        for job in submitted:
            got = hashlib.sha256(call(fleet.front, "GET", f"/v1/jobs/{job}/results")[2]).hexdigest()
            if got != expected:
                failures.append(f"job {job}: result differs from the uninterrupted run")
        if killed is None or termed is None:
            failures.append("the drill could not kill and stop a replica mid-job")
        else:
            # The replica that took the kill -9'd job over rebuilt its spool from the committed bands.
            rebuilt = [line.strip() for i in range(fleet.n)
                       for line in open(os.path.join(fleet.work, f"replica{i}.log"), errors="replace")
                       if "spool rebuilt from the store" in line and killed[0] in line]
            log(f"kill -9'd job resumed: {rebuilt[0][rebuilt[0].find('bands='):][:160] if rebuilt else 'NOT from committed bands'}")
            if not rebuilt:
                failures.append("the kill -9'd job was not resumed from its committed row bands")
        # Phase 2: PostgreSQL stopped for --outage seconds while jobs run: tiles keep answering 200, job
        # routes answer 503 with Retry-After; once it is back every job completes, once, with the same result.
        outage_jobs = [submit(fleet.front, body) for _ in range(2)]
        wait_until("an outage job to run", 600, lambda: psql(fleet.db, "SELECT 1 FROM spectralx_jobs WHERE status = 'running'"))
        subprocess.run([os.path.join(ROOT, "scripts/postgres/stop.sh"), fleet.pg_dir, "--keep"], check=True)
        log(f"PostgreSQL stopped for {a.outage} s")
        tile = scene_npy(224)
        codes = {"tile": {}, "job": {}}
        retry_after = True
        end = time.time() + a.outage
        while time.time() < end:
            st, _, _ = call(fleet.front, "POST", "/v1/domains/fleet/segment?output=json", body=tile,
                            headers={"Content-Type": "application/x-npy"})
            codes["tile"][st] = codes["tile"].get(st, 0) + 1
            st, hdrs, _ = call(fleet.front, "GET", f"/v1/jobs/{outage_jobs[0]}")
            codes["job"][st] = codes["job"].get(st, 0) + 1
            if st == 503 and "Retry-After" not in hdrs:
                retry_after = False
            time.sleep(1)
        subprocess.run([os.path.join(ROOT, "scripts/postgres/start.sh"), fleet.pg_dir, str(fleet.base + 100)], check=True,
                       stdout=subprocess.DEVNULL)
        back = time.time()
        log(f"PostgreSQL back; during the outage tile answers {codes['tile']}, job status answers {codes['job']}")
        if set(codes["tile"]) != {200}:
            failures.append(f"tile requests during the outage: {codes['tile']}")
        if set(codes["job"]) != {503} or not retry_after:
            failures.append(f"job routes during the outage: {codes['job']} (Retry-After on every 503: {retry_after})")
        wait_until("the outage jobs", 900, lambda: all(
            call(fleet.front, "GET", f"/v1/jobs/{j}")[0] == 200
            and json.loads(call(fleet.front, "GET", f"/v1/jobs/{j}")[2])["status"] == "successful" for j in outage_jobs), interval=1)
        log(f"both outage jobs successful {time.time() - back:.1f} s after PostgreSQL came back")
        for j in outage_jobs:
            count = psql(fleet.db, f"SELECT finished_count FROM spectralx_jobs WHERE job_id = '{j}'")[0][0]
            if int(count) != 1:
                failures.append(f"outage job {j} finished {count} times")
            if hashlib.sha256(call(fleet.front, "GET", f"/v1/jobs/{j}/results")[2]).hexdigest() != expected:
                failures.append(f"outage job {j}: result differs from the uninterrupted run")
        # Phase 3: a stale replica. The dead replicas come back; the owner of a running job is frozen
        # (SIGSTOP) until another replica has taken the job over and finished it, then thawed (SIGCONT):
        # it must write nothing more (its next heartbeat finds the lease lost), the result stays the new
        # owner's, and the job stays finished once.
        for i, p in fleet.procs.items():
            if p.poll() is not None:
                fleet.start_replica(i)
        for i in fleet.procs:
            wait_until(f"replica {i} ready again", 600, lambda i=i: fleet.ready(fleet.base + 1 + i))
        stale_job = submit(fleet.front, body)
        row = wait_until("the stale-test job to commit a row band", 600, lambda: psql(
            fleet.db, f"SELECT lease_owner, lease_generation FROM spectralx_jobs WHERE job_id = '{stale_job}' "
                      "AND status = 'running' AND progress_rows > 0"))
        frozen, gen = int(row[0][0].replace("replica", "")), int(row[0][1])

        def leases_lost():
            lines = [line for line in call(fleet.base + 1 + frozen, "GET", "/metrics")[2].decode().splitlines()
                     if line.startswith("spectralx_fleet_leases_lost_total")]
            return lines, sum(float(line.split()[-1]) for line in lines)
        # Counted from here: the replica may have lost leases before (a job it ran during the outage).
        _, lost_before = leases_lost()
        fleet.procs[frozen].send_signal(signal.SIGSTOP)
        log(f"SIGSTOP replica{frozen} while it runs {stale_job} (lease generation {gen})")
        wait_until("another replica to finish the stale-test job", 600, lambda: psql(
            fleet.db, f"SELECT 1 FROM spectralx_jobs WHERE job_id = '{stale_job}' AND status = 'successful'"), interval=0.5)
        fleet.procs[frozen].send_signal(signal.SIGCONT)
        time.sleep(5)  # several heartbeats of the thawed replica
        status, count, final_gen = psql(fleet.db, f"SELECT status, finished_count, lease_generation FROM spectralx_jobs "
                                                  f"WHERE job_id = '{stale_job}'")[0]
        lost, lost_after = leases_lost()
        log(f"SIGCONT replica{frozen}: job {status}, finished {count} time(s), generation {final_gen}; its metric: {lost}")
        if status != "successful" or int(count) != 1 or int(final_gen) <= gen:
            failures.append(f"stale replica: job {status}, finished {count} times, generation {final_gen}")
        if hashlib.sha256(call(fleet.front, "GET", f"/v1/jobs/{stale_job}/results")[2]).hexdigest() != expected:
            failures.append("stale replica: the result differs from the uninterrupted run")
        if lost_after != lost_before + 1:
            failures.append(f"stale replica: it did not report the lost lease ({lost}, {lost_before:g} before)")
        for job, t in sorted(submitted.items(), key=lambda kv: kv[1]):
            mark = " (kill -9)" if killed and job == killed[0] else " (SIGTERM)" if termed and job == termed[0] else ""
            log(f"job {job}: submit to done {done_at.get(job, float('nan')) - t:.1f} s{mark}")
        for job, delay, owner in takeovers:
            log(f"takeover of {job} by {owner}: {delay:.1f} s after the signal (lease {a.lease})")
        log(f"status polls through the front: {polls}")
    finally:
        fleet.stop()
    if failures:
        for f in failures:
            log("FAIL: " + f)
        sys.exit(1)
    log(f"fleet drill: 1 passed, 0 failed")


def up(a):
    fleet = Fleet(a.replicas, a.models or default_store(), a.port, a.lease, a.heartbeat, a.blob_store)
    try:
        fleet.start()
        log(f"replicas: " + ", ".join(f"http://127.0.0.1:{a.port + 1 + i}" for i in range(a.replicas)))
        log(f"job database: {fleet.db}; blob store: {fleet.blob_env.get('SPECTRALX_BLOB_STORE')}; Ctrl-C stops the fleet")
        signal.sigwait([signal.SIGINT, signal.SIGTERM])
    finally:
        fleet.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["up", "drill"])
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--jobs", type=int, default=6)
    p.add_argument("--models")
    p.add_argument("--port", type=int, default=18200, help="front port; replicas use the next ones, PostgreSQL +100")
    p.add_argument("--height", type=int, default=1344, help="scene rows (224 columns, 4 bands)")
    p.add_argument("--lease", default="6s")
    p.add_argument("--heartbeat", default="1s")
    p.add_argument("--blob-store", choices=["s3", "file"], default="s3",
                   help="s3: moto_server on loopback (port +200); file: a directory every replica sees")
    p.add_argument("--outage", type=int, default=30, help="seconds PostgreSQL is stopped in the drill's second phase")
    a = p.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} not found: swift build -c release first")
    (drill if a.command == "drill" else up)(a)


if __name__ == "__main__":
    main()
