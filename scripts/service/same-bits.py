#!/usr/bin/env python3
"""The same tile, the same bytes: segments one tile alone, then again while other requests of two
domains are in flight (so the dynamic batcher puts it in batches of other sizes, positions and
domains), and checks that every answer's sha256 equals the first one.

    scripts/service/same-bits.py --url http://127.0.0.1:8080 \
        --tile A=tileA-0.tif --load A=tileA-1.tif --load B=tileB-0.tif [--rounds 20] [--concurrent 8]

Loopback only: the server under test runs on this machine. Prints one line per round and a summary;
exits 1 when any answer differs.
"""
import argparse
import hashlib
import http.client
import sys
import threading
import urllib.parse


def segment(url, domain, body):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=600)
    conn.request("POST", f"/v1/domains/{domain}/segment", body=body, headers={"Content-Type": "image/tiff"})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    if r.status != 200:
        raise RuntimeError(f"{domain}: HTTP {r.status}: {data[:200]!r}")
    return hashlib.sha256(data).hexdigest()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--tile", required=True, help="DOMAIN=FILE: the tile whose answer must never change")
    p.add_argument("--load", action="append", required=True, help="DOMAIN=FILE: a tile sent concurrently (repeatable)")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--concurrent", type=int, default=8, help="requests in flight beside the tile in each round")
    a = p.parse_args()
    host = urllib.parse.urlsplit(a.url).hostname
    if not (host == "localhost" or host == "::1" or host.startswith("127.")):
        sys.exit("same-bits.py talks to loopback servers only")

    def split(spec):
        d, f = spec.split("=", 1)
        return d, open(f, "rb").read()

    domain, tile = split(a.tile)
    loads = [split(s) for s in a.load]
    alone = segment(a.url, domain, tile)
    print(f"alone: {alone}")
    differing = 0
    for rnd in range(a.rounds):
        results, errors = [], []

        def other(i):
            d, b = loads[i % len(loads)]
            try:
                segment(a.url, d, b)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(str(e))

        threads = [threading.Thread(target=other, args=(i,)) for i in range(a.concurrent)]
        for t in threads[: a.concurrent // 2]:
            t.start()
        mine = threading.Thread(target=lambda: results.append(segment(a.url, domain, tile)))
        mine.start()
        for t in threads[a.concurrent // 2:]:
            t.start()
        mine.join()
        for t in threads:
            t.join()
        same = results and results[0] == alone
        differing += 0 if same else 1
        print(f"round {rnd + 1}: {results[0] if results else 'no answer'} {'same' if same else 'DIFFERENT'}"
              + (f" ({len(errors)} load errors: {errors[0]})" if errors else ""))
    print(f"{a.rounds - differing} of {a.rounds} rounds byte-identical to the tile segmented alone")
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
