#!/usr/bin/env python3
"""Writes the small seed corpus for the fuzzers: Fuzz/corpus/tiff/*.tif and Fuzz/corpus/npy/*.npy.

Usage: python3 scripts/raster/make_fuzz_seeds.py [OUT_DIR=Fuzz/corpus]
Needs numpy, tifffile and imagecodecs (pip install tifffile imagecodecs).
"""
import os
import sys

import numpy as np
import tifffile

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "Fuzz", "corpus")
tdir, ndir = os.path.join(out, "tiff"), os.path.join(out, "npy")
os.makedirs(tdir, exist_ok=True)
os.makedirs(ndir, exist_ok=True)
rng = np.random.default_rng(7)
GEO = {
    33550: ("d", 3, (10.0, 10.0, 0.0)),
    33922: ("d", 6, (0.0, 0.0, 0.0, 500000.0, 3400000.0, 0.0)),
    34735: ("H", 16, (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32650)),
    42113: ("s", 0, "0"),
}
n = 0
for dtype in ["uint8", "int16", "uint16", "float32", "float64", "int32", "uint64"]:
    for comp in [None, "lzw", "zlib", "packbits"]:
        for planar in ["contig", "separate"]:
            for tiled in [False, True]:
                for bo in "<>":
                    if rng.random() < 0.55:
                        continue
                    pred = None
                    if comp in ("lzw", "zlib") and rng.random() < 0.6:
                        pred = 3 if dtype.startswith("float") else 2
                    shape = (2, 9, 7) if planar == "separate" else (9, 7, 2)
                    data = (rng.random(shape) * 200).astype(dtype)
                    kw = dict(photometric="minisblack", planarconfig=planar, compression=comp, predictor=pred,
                              byteorder=bo, bigtiff=rng.random() < 0.3, metadata=None,
                              extratags=[(k, t, c, v, False) for k, (t, c, v) in GEO.items()])
                    if tiled:
                        kw["tile"] = (16, 16)
                    else:
                        kw["rowsperstrip"] = 4
                    tifffile.imwrite(os.path.join(tdir, f"seed{n:03d}.tif"), data, **kw)
                    n += 1
# A multi-page file with an overview after the main image.
with tifffile.TiffWriter(os.path.join(tdir, "seed_overview.tif")) as w:
    w.write(np.arange(64, dtype="uint16").reshape(8, 8), compression="zlib", predictor=2)
    w.write(np.arange(16, dtype="uint16").reshape(4, 4), subfiletype=1)
print(f"wrote {n + 1} TIFF seeds to {tdir}")

m = 0
for dt in ["<u1", "|i1", "<u2", ">i2", "<u4", ">i4", "<f4", ">f4", "<f8", "<i8", ">u8"]:
    for fortran in [False, True]:
        a = (rng.random((3, 4)) * 100).astype(dt)
        np.save(os.path.join(ndir, f"seed{m:03d}.npy"), np.asfortranarray(a) if fortran else a)
        m += 1
np.save(os.path.join(ndir, "seed_scalar.npy"), np.float32(3.5))
np.save(os.path.join(ndir, "seed_empty.npy"), np.zeros((0, 5), "<f4"))
np.save(os.path.join(ndir, "seed_object.npy"), np.array([1, "a"], dtype=object), allow_pickle=True)
print(f"wrote {m + 3} NPY seeds to {ndir}")
