#!/usr/bin/env python3
# Peak memory of PUT reloads of a loaded domain, with CLIENTS concurrent clients segmenting (README, k8s sizing).
#   scripts/service/reload_rss.py BIN STORE DOMAIN BANDS      e.g. .build/release/spectralx /tmp/m wh 32
#   env: CLIENTS (3), RELOADS (2), AFTER (seconds after each reload, 20). Prints idle / load / per-reload peaks.
import os, sys, time, threading, subprocess, json, urllib.request, io, socket
import numpy as np
binary, store, domain, bands = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
clients = int(os.environ.get("CLIENTS", "3")); reloads = int(os.environ.get("RELOADS", "2"))
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
env = dict(os.environ, SPECTRALX_LOG_LEVEL="warning")
p = subprocess.Popen([binary, "serve", "--models", store, "--port", str(port), "--admin-token", "t", "--max-batch", "4"],
                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
url = f"http://127.0.0.1:{port}"
def get(path):
    try: return urllib.request.urlopen(url + path, timeout=5).status
    except Exception as e: return getattr(e, "code", 0)
t0 = time.time()
while get("/readyz") != 200:
    if p.poll() is not None: sys.exit("server died")
    time.sleep(0.2)
print(f"ready after {time.time()-t0:.1f} s")
def status():
    d = {}
    for line in open(f"/proc/{p.pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"): d[k] = int(v.split()[0]) * 1024
    return d
samples = []; stop = False; phase = ["idle"]
def sampler():
    while not stop:
        try: d = status(); d["phase"] = phase[0]; d["t"] = time.time(); samples.append(d)
        except FileNotFoundError: return
        time.sleep(0.02)
threading.Thread(target=sampler, daemon=True).start()
buf = io.BytesIO(); np.save(buf, np.random.default_rng(0).random((bands, 256, 256), dtype=np.float32)); tile = buf.getvalue()
codes = []
def client():
    while not stop:
        req = urllib.request.Request(url + f"/v1/domains/{domain}/segment?output=json", data=tile, headers={"Content-Type": "application/x-npy"})
        try: codes.append(urllib.request.urlopen(req, timeout=300).status)
        except Exception as e: codes.append(getattr(e, "code", 0))
time.sleep(1)
base = status()
threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
phase[0] = "load"
for t in threads: t.start()
time.sleep(15)
loaded = max(x["VmRSS"] for x in samples if x["phase"] == "load")
results = []
for i in range(reloads):
    phase[0] = f"reload{i}"
    t = time.time()
    req = urllib.request.Request(url + f"/v1/domains/{domain}", method="PUT", headers={"Authorization": "Bearer t"})
    try: code = urllib.request.urlopen(req, timeout=600).status
    except Exception as e: code = getattr(e, "code", 0)
    results.append((code, time.time() - t))
    phase[0] = f"after{i}"
    time.sleep(float(os.environ.get("AFTER", "20")))
stop = True
time.sleep(0.2)
final = status()
p.terminate(); p.wait(timeout=120)
G = 1 << 30
def samples_after(i, key):
    xs = [x[key] for x in samples if x["phase"] == f"after{i}"]
    return (xs[-1] if xs else 0) / G
def peak(key, pred): return max((x[key] for x in samples if pred(x["phase"])), default=0) / G
print(f"clients {clients}, answers {len(codes)} ({sorted(set(codes))})")
print(f"idle: RSS {base['VmRSS']/G:.2f} GiB (anon {base['RssAnon']/G:.2f}, file {base['RssFile']/G:.2f})")
print(f"under load, before reload: peak RSS {loaded/G:.2f} GiB, peak anon {peak('RssAnon', lambda p: p == 'load'):.2f}")
for i, (code, secs) in enumerate(results):
    print(f"reload {i}: PUT {code} in {secs:.1f} s; peak RSS {peak('VmRSS', lambda p: p == f'reload{i}'):.2f} GiB, "
          f"peak anon {peak('RssAnon', lambda p: p == f'reload{i}'):.2f}, peak file {peak('RssFile', lambda p: p == f'reload{i}'):.2f}; "
          f"after: RSS {samples_after(i, 'VmRSS'):.2f}, anon {samples_after(i, 'RssAnon'):.2f}")
print(f"VmHWM (process peak) {final['VmHWM']/G:.2f} GiB")
