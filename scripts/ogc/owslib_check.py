#!/usr/bin/env python3
"""OWSLib (PyPI) against a live spectralx: conformance, process list and description, a synchronous and
an asynchronous execution of a 4-band 224x224 tile, the job polled per OGC API - Processes until
`successful`, its results document followed and the COG downloaded and checked (rio-cogeo when
installed, else the TIFF header). Usage: owslib_check.py http://127.0.0.1:PORT PROCESS_ID
Prints "skip: ..." and exits 0 when OWSLib is not installed."""
import base64
import io
import json
import struct
import sys
import time
import urllib.request

try:
    from owslib.ogcapi.processes import Processes
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(0)

url, pid = sys.argv[1].rstrip("/"), sys.argv[2]


def npy_tile(bands=4, h=224, w=224):
    """A float32 (C,H,W) NumPy file without numpy: header + little-endian values."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, %d), }" % (bands, h, w)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    values = [((i * 37) % 1000) / 1000.0 for i in range(bands * h * w)]
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + struct.pack(f"<{len(values)}f", *values)


def get(path, accept="application/json"):
    req = urllib.request.Request(url + path, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, r.headers, r.read()


p = Processes(url)
conf = p.conformance()["conformsTo"]
assert "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core" in conf, conf
ids = [x["id"] for x in p.processes()]
assert pid in ids, ids
desc = p.process(pid)
assert "scene" in desc["inputs"] and "labels" in desc["outputs"], desc.keys()
print(f"owslib: conformance {len(conf)} classes, processes {ids}, {pid}: inputs {sorted(desc['inputs'])}")

scene = {"value": base64.b64encode(npy_tile()).decode(), "mediaType": "application/x-npy", "encoding": "base64"}
sync = p.execute(pid, {"scene": scene, "mode": "resize"}, response="document")
labels = base64.b64decode(sync["labels"]["value"])
assert labels[:2] in (b"II", b"MM"), labels[:8]
print(f"owslib: synchronous execution: {len(labels)}-byte GeoTIFF")

status = p.execute(pid, {"scene": scene}, async_=True)
job = status["jobID"]
assert status["status"] in ("accepted", "running", "successful"), status
self_link = next(l["href"] for l in status["links"] if l["rel"] == "self")
deadline = time.time() + 600
while status["status"] not in ("successful", "failed", "dismissed"):
    assert time.time() < deadline, "job did not finish in 600 s"
    time.sleep(0.2)
    status = json.loads(get(self_link)[2])
assert status["status"] == "successful", status
results_link = next(l["href"] for l in status["links"] if l["rel"].endswith("/results"))
doc = json.loads(get(results_link)[2])
code, headers, cog = get(doc["labels"]["href"], accept="image/tiff")
assert code == 200 and headers["Content-Type"].startswith("image/tiff"), (code, headers["Content-Type"])
print(f"owslib: job {job} successful; result {len(cog)} bytes")
try:
    import tempfile
    from rio_cogeo.cogeo import cog_validate
    with tempfile.NamedTemporaryFile(suffix=".tif") as f:
        f.write(cog)
        f.flush()
        ok, errors, _ = cog_validate(f.name, quiet=True)
    assert ok, errors
    print("owslib: result is a valid COG (rio-cogeo)")
except ImportError:
    assert cog[:4] in (b"II*\x00", b"MM\x00*"), cog[:8]
    print("owslib: result is a TIFF (rio-cogeo not installed: COG layout not checked)")
print("owslib: ok")
