#!/usr/bin/env python3
"""Hostile-client drills against `spectralx serve` on loopback (stdlib only; bounded, stops by itself).

    scripts/service/attack.py --binary .build/release/spectralx --tile TILE.tif [--models STORE] \
        [--domain demo] [--port 18080] [SCENARIO ...]

Scenarios (default: all), each against a fresh server whose log is kept in --workdir:
  idle      300 idle connections (re-opened when the server closes them), /healthz every 0.5 s for
            30 s, one normal upload in the middle
  trickle   260 uploads sending 1 byte every 3 s, same probes and upload
  slow      one 12 MB upload at 2 KB/s: time until the server answers (expect 408 body_too_slow)
  drain     SIGTERM while a slow upload is connected: time until the process exits
  pipeline  three pipelined requests with a 404 in the middle, on one connection
  busy      SIGTERM with --drain-timeout 0.5 while a segment request is computing: exit status and time
            (the deadline passes with a batch running)
  admin     --api-keys without --admin-token: unauthenticated and keyed PUT/DELETE of the domain answer
            403, and the domain is still served

Prints one block per scenario: probe success (200 within 1 s), the upload's status, the statuses
the attackers received, the number of server log lines (and refusal warnings), timings.
Loopback only: every address used is 127.0.0.1.
"""
import argparse, collections, os, resource, selectors, signal, socket, subprocess, sys, threading, time

HOST = "127.0.0.1"


def raise_fd_limit(want=8192):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else want
    target = max(soft, min(target, 1 << 20))
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


class Server:
    def __init__(self, args, name, extra):
        self.log_path = os.path.join(args.workdir, f"{name}.log")
        cmd = [args.binary, "serve", "--port", str(args.port)] + (["--models", args.models] if args.models else []) + extra
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=lambda: raise_fd_limit())
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited early, see {self.log_path}")
            try:
                if request("GET", "/readyz", args.port, timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit("server did not become ready")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def log_lines(self):
        with open(self.log_path, errors="replace") as f:
            lines = f.readlines()
        return len(lines), sum("connection limit reached" in l for l in lines)


def request(method, path, port, body=b"", headers=None, timeout=5.0):
    """One request on a fresh connection; returns (status, seconds)."""
    t0 = time.monotonic()
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        h = {"Host": f"{HOST}:{port}", "Connection": "close"}
        if body or method in ("POST", "PUT"):
            h["Content-Length"] = str(len(body))
        h.update(headers or {})
        s.sendall((f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode() + body)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        while True:  # read to the end so the timing covers the whole answer
            chunk = s.recv(1 << 20)
            if not chunk:
                break
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
        return status, time.monotonic() - t0
    finally:
        s.close()


def status_of(data):
    if data.startswith(b"HTTP/1.1 ") and len(data) >= 12:
        return data[9:12].decode()
    return "closed" if not data else "garbage"


class Attackers:
    """N connections in one selector loop: `idle` sends nothing; `trickle` sends an upload head and
    then 1 byte per socket every `interval` s. Closed connections are re-opened until `stop`."""

    def __init__(self, port, n, kind, interval=3.0, body_size=12 << 20):
        self.port, self.n, self.kind, self.interval, self.body_size = port, n, kind, interval, body_size
        self.statuses = collections.Counter()
        self.stop = threading.Event()
        self.sel = selectors.DefaultSelector()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.opened = 0

    def open_one(self):
        try:
            s = socket.create_connection((HOST, self.port), timeout=2)
        except OSError:
            self.statuses["connect_failed"] += 1
            return
        s.setblocking(False)
        if self.kind == "trickle":
            head = (f"POST /v1/domains/demo/segment HTTP/1.1\r\nHost: x\r\nContent-Type: image/tiff\r\n"
                    f"Content-Length: {self.body_size}\r\n\r\n").encode()
            try:
                s.send(head)
            except OSError:
                pass
        self.sel.register(s, selectors.EVENT_READ, bytearray())
        self.opened += 1

    def run(self):
        for _ in range(self.n):
            self.open_one()
        next_drip = time.monotonic() + self.interval
        while not self.stop.is_set():
            for key, _ in self.sel.select(timeout=0.2):
                s, buf = key.fileobj, key.data
                try:
                    chunk = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                buf += chunk
                if not chunk or b"\r\n\r\n" in buf:
                    self.statuses[status_of(bytes(buf))] += 1
                    self.sel.unregister(s)
                    s.close()
                    if not self.stop.is_set():
                        self.open_one()
            if self.kind == "trickle" and time.monotonic() >= next_drip:
                next_drip += self.interval
                for key in list(self.sel.get_map().values()):
                    try:
                        key.fileobj.send(b"x")
                    except OSError:
                        pass
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


def probe_and_upload(args, duration=30.0, period=0.5):
    """Probes /healthz every `period` s for `duration` s; one normal upload starts halfway."""
    results = []
    upload = {}

    def do_upload():
        body = open(args.tile, "rb").read()
        try:
            upload["status"], upload["seconds"] = request(
                "POST", f"/v1/domains/{args.domain}/segment?output=json", args.port, body,
                {"Content-Type": "image/tiff"}, timeout=600)
        except OSError as e:
            upload["status"], upload["seconds"] = f"error {e}", None

    t_end = time.monotonic() + duration
    uploader = None
    n = 0
    while time.monotonic() < t_end:
        t = time.monotonic()
        if uploader is None and t > t_end - duration / 2:
            uploader = threading.Thread(target=do_upload)
            uploader.start()
        try:
            status, secs = request("GET", "/healthz", args.port, timeout=1.0)
        except OSError:
            status, secs = 0, None
        results.append((status, secs))
        n += 1
        time.sleep(max(0.0, t + period - time.monotonic()))
    if uploader:
        uploader.join(600)
    ok = sum(1 for st, secs in results if st == 200 and secs is not None and secs <= 1.0)
    lat = sorted(secs for st, secs in results if secs is not None)
    med = lat[len(lat) // 2] if lat else None
    return ok, len(results), med, (max(lat) if lat else None), upload


def scenario_flood(args, kind, n):
    srv = Server(args, kind, ["--max-connections", str(args.max_connections)])
    try:
        with Attackers(args.port, n, kind) as att:
            time.sleep(2)  # let the attackers settle
            ok, total, med, worst, upload = probe_and_upload(args)
            statuses = dict(att.statuses)
            opened = att.opened
    finally:
        srv.stop()
    lines, refusals = srv.log_lines()
    print(f"[{kind}] {n} attackers (max-connections {args.max_connections}): /healthz 200 within 1 s: {ok}/{total} "
          f"({100.0 * ok / total:.1f} %), median {med * 1000:.1f} ms, worst {worst * 1000:.1f} ms")
    print(f"[{kind}] normal upload in the middle: status {upload.get('status')} in {upload.get('seconds') or 0:.1f} s")
    print(f"[{kind}] attackers: {opened} connections opened, answers {statuses}")
    print(f"[{kind}] server log: {lines} lines, {refusals} refusal warnings ({srv.log_path})")


def slow_upload(port, size, rate, result, stop=None):
    s = socket.create_connection((HOST, port), timeout=5)
    s.sendall((f"POST /v1/domains/demo/segment HTTP/1.1\r\nHost: x\r\nContent-Type: image/tiff\r\n"
               f"Content-Length: {size}\r\n\r\n").encode())
    s.setblocking(False)
    t0 = time.monotonic()
    sent, buf = 0, b""
    step = max(1, rate // 10)
    while sent < size and time.monotonic() - t0 < 600 and not (stop and stop.is_set()):
        try:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            if b"\r\n\r\n" in buf:
                break
        except BlockingIOError:
            pass
        except OSError:
            break
        try:
            s.send(b"\0" * step)
            sent += step
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            break
        time.sleep(0.1)
    s.setblocking(True)
    s.settimeout(5)
    try:
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except OSError:
        pass
    s.close()
    result.update(status=status_of(buf), seconds=time.monotonic() - t0, sent=sent,
                  code=(buf.split(b'"code":"')[1].split(b'"')[0].decode() if b'"code":"' in buf else None))


def scenario_slow(args):
    srv = Server(args, "slow", [])
    try:
        r = {}
        slow_upload(args.port, 12 << 20, 2048, r)
    finally:
        srv.stop()
    print(f"[slow] 12 MB at 2 KB/s: answered {r['status']} {r.get('code')} after {r['seconds']:.1f} s "
          f"({r['sent']} bytes sent; --min-body-rate 4096 over 20 s windows)")


def scenario_drain(args):
    srv = Server(args, "drain", ["--drain-timeout", str(args.drain_timeout)])
    r = {}
    stop = threading.Event()
    t = threading.Thread(target=slow_upload, args=(args.port, 12 << 20, 2048, r, stop), daemon=True)
    t.start()
    time.sleep(3)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    try:
        srv.proc.wait(120)
        exited = time.monotonic() - t0
    except subprocess.TimeoutExpired:
        exited = None
    stop.set()
    t.join(10)
    srv.stop()
    print(f"[drain] SIGTERM with a 2 KB/s upload connected: process exited after "
          f"{exited if exited is None else round(exited, 2)} s (--drain-timeout {args.drain_timeout}); "
          f"the upload saw {r.get('status')} {r.get('code')}")


def scenario_pipeline(args):
    srv = Server(args, "pipeline", [])
    try:
        s = socket.create_connection((HOST, args.port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: one\r\n\r\n"
                  b"GET /no/such/route HTTP/1.1\r\nHost: x\r\nX-Request-Id: two\r\n\r\n"
                  b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Request-Id: three\r\n\r\n")
        data, deadline = b"", time.time() + 10
        while data.count(b"HTTP/1.1 ") < 3 and time.time() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
    finally:
        srv.stop()
    answers = [(p[:3].decode(), p.split(b"X-Request-Id: ")[1].split(b"\r\n")[0].decode() if b"X-Request-Id: " in p else "?",
                b"Connection: close" in p) for p in data.split(b"HTTP/1.1 ")[1:]]
    print(f"[pipeline] three pipelined requests on one connection: {answers} (status, request id, closed)")


def scenario_busy(args):
    srv = Server(args, "busy", ["--drain-timeout", "0.5"])
    body = open(args.tile, "rb").read()
    s = socket.create_connection((HOST, args.port), timeout=30)
    s.sendall((f"POST /v1/domains/{args.domain}/segment?output=json HTTP/1.1\r\nHost: x\r\nContent-Type: image/tiff\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    time.sleep(0.3)  # the upload is read and the batch started (a forward pass takes seconds here)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    try:
        srv.proc.wait(60)
        exited = round(time.monotonic() - t0, 3)
    except subprocess.TimeoutExpired:
        exited = None
    s.close()
    srv.stop()
    with open(srv.log_path, errors="replace") as f:
        log = f.read()
    print(f"[busy] SIGTERM during a forward pass (--drain-timeout 0.5): exited after {exited} s with status "
          f"{srv.proc.returncode}; crash in log: {'crashed' in log}; in-flight warning: {'work in flight' in log}")


def scenario_admin(args):
    srv = Server(args, "admin", ["--api-keys", "k1"])
    try:
        d = f"/v1/domains/{args.domain}"
        got = {}
        for method in ("PUT", "DELETE"):
            got[method] = request(method, d, args.port)[0]
            got[method + " with key"] = request(method, d, args.port, headers={"X-API-Key": "k1"})[0]
        got["GET with key"] = request("GET", d, args.port, headers={"X-API-Key": "k1"})[0]
        got["readyz"] = request("GET", "/readyz", args.port)[0]
    finally:
        srv.stop()
    print(f"[admin] --api-keys without --admin-token: {got}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=".build/release/spectralx")
    ap.add_argument("--models")
    ap.add_argument("--domain", default="demo")
    ap.add_argument("--tile", required=True)
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--max-connections", type=int, default=256)
    ap.add_argument("--drain-timeout", type=float, default=5)
    ap.add_argument("--workdir", default="/tmp/spectralx-attack")
    ap.add_argument("scenarios", nargs="*", default=["idle", "trickle", "slow", "drain", "pipeline", "busy", "admin"])
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    print(f"fd limit {raise_fd_limit()}")
    for name in args.scenarios:
        if name == "idle":
            scenario_flood(args, "idle", 300)
        elif name == "trickle":
            scenario_flood(args, "trickle", 260)
        elif name == "slow":
            scenario_slow(args)
        elif name == "drain":
            scenario_drain(args)
        elif name == "pipeline":
            scenario_pipeline(args)
        elif name == "admin":
            scenario_admin(args)
        elif name == "busy":
            scenario_busy(args)
        else:
            raise SystemExit(f"unknown scenario {name}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
