#!/usr/bin/env python3
"""Decode throughput of tifffile (+imagecodecs) on the benchmark files, for comparison with
RasterBenchmark. Usage: python3 scripts/raster/bench_tifffile.py FILE.tif... [--threads N]
Prints one line per file: decoded MB, best seconds over 3 runs, MB/s.
"""
import sys
import time

import tifffile

args = [a for a in sys.argv[1:] if not a.startswith("--")]
threads = 1
if "--threads" in sys.argv:
    threads = int(sys.argv[sys.argv.index("--threads") + 1])
    args = [a for a in args if a != str(threads)]
for path in args:
    best = None
    nbytes = 0
    for _ in range(3):
        t0 = time.perf_counter()
        a = tifffile.imread(path, maxworkers=threads)
        dt = time.perf_counter() - t0
        nbytes = a.nbytes
        del a
        best = dt if best is None else min(best, dt)
    print(f"tifffile {path}: {nbytes / 1e6:.1f} MB in {best:.3f} s = {nbytes / 1e6 / best:.1f} MB/s (maxworkers={threads})")
