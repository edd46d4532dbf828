#!/usr/bin/env python3
"""Independent-producer test matrix for the Swift GeoTIFF reader.

Usage: python3 scripts/raster/gen_tiff_matrix.py OUT_DIR
Writes OUT_DIR/caseNNNN.tif (made by tifffile + imagecodecs) and OUT_DIR/caseNNNN.npy (the expected
pixels, shape (bands, height, width), native dtype, little-endian, C order), plus OUT_DIR/manifest.json
listing each case's parameters. Matrix: dtype x compression x predictor x planar x tiled/stripped x
byte order x classic/BigTIFF, with partial edge tiles/strips, plus a multi-page file (overview and
mask after the full-resolution image). Cases tifffile cannot write are listed under "skipped".
"""
import itertools
import json
import os
import sys

import numpy as np
import tifffile

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(2024)
H, W, B = 19, 21, 3
DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64"]
COMPRESSIONS = [None, "lzw", "adobe_deflate", "deflate", "packbits"]  # 1, 5, 8, 32946, 32773
GEO = [
    (33550, "d", 3, (10.0, 10.0, 0.0), False),
    (33922, "d", 6, (0.0, 0.0, 0.0, 500000.0, 3400000.0, 0.0), False),
    (34735, "H", 16, (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32650), False),
    (42113, "s", 0, "-9999", False),
]


def make(dtype):
    base = np.add.outer(np.arange(H), np.arange(W))[None, :, :] * 3 + np.arange(B)[:, None, None] * 50
    noise = rng.integers(0, 16, size=(B, H, W))
    a = base + noise
    if dtype.startswith("float"):
        return (a / 7.0 - 20).astype(dtype)
    info = np.iinfo(dtype)
    a = a.astype(np.int64) * (1 if info.bits == 8 else 97)
    if info.min < 0:
        a = a - (a.max() // 2)
    return np.clip(a, info.min, info.max).astype(dtype)


cases, skipped = [], []
k = 0
for dtype, comp, planar, tiled, bo, big in itertools.product(
        DTYPES, COMPRESSIONS, ["contig", "separate"], [False, True], "<>", [False, True]):
    preds = [None]
    if comp in ("lzw", "adobe_deflate", "deflate"):
        preds.append(3 if dtype.startswith("float") else 2)
    for pred in preds:
        data = make(dtype)
        arr = data if planar == "separate" else np.moveaxis(data, 0, -1)
        kw = dict(photometric="minisblack", planarconfig=planar, compression=comp, predictor=pred,
                  byteorder=bo, bigtiff=big, metadata=None, extratags=GEO)
        if tiled:
            kw["tile"] = (16, 16)
        else:
            kw["rowsperstrip"] = 4
        name = f"case{k:04d}"
        params = dict(name=name, dtype=dtype, compression=comp, predictor=pred, planar=planar, tiled=tiled,
                      byteorder=bo, bigtiff=big)
        try:
            tifffile.imwrite(os.path.join(out, name + ".tif"), arr, **kw)
        except Exception as e:  # noqa: BLE001 - record what the producer cannot do
            skipped.append(dict(params, error=str(e)[:200]))
            continue
        np.save(os.path.join(out, name + ".npy"), data.astype(data.dtype.newbyteorder("<")))
        cases.append(params)
        k += 1

# Multi-page: full-resolution image first, then a reduced-resolution overview and a mask.
full = make("uint16")
with tifffile.TiffWriter(os.path.join(out, "multipage.tif")) as w:
    w.write(full, photometric="minisblack", planarconfig="separate", compression="adobe_deflate", predictor=2,
            extratags=GEO, metadata=None)
    w.write(full[:, ::2, ::2], photometric="minisblack", planarconfig="separate", subfiletype=1, metadata=None)
    w.write(np.zeros((H, W), bool), subfiletype=4, photometric="minisblack", metadata=None)  # 1-bit mask
np.save(os.path.join(out, "multipage.npy"), full)
# Overview first (as some writers do), then the full-resolution image.
with tifffile.TiffWriter(os.path.join(out, "overview_first.tif")) as w:
    w.write(full[:, ::2, ::2], photometric="minisblack", planarconfig="separate", subfiletype=1, metadata=None)
    w.write(full, photometric="minisblack", planarconfig="separate", compression="lzw", metadata=None)
np.save(os.path.join(out, "overview_first.npy"), full)

with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump(dict(cases=cases, skipped=skipped, extra=["multipage", "overview_first"]), f, indent=1)
print(json.dumps(dict(cases=len(cases), skipped=len(skipped))))
