#!/usr/bin/env python3
"""Verifies TIFFs written by the Swift writer with tifffile + imagecodecs (an independent decoder).

Usage: python3 scripts/raster/verify_matrix.py DIR
For every DIR/X.tif there must be DIR/X.npy holding the expected pixels as (bands, height, width).
Prints JSON {"checked": n, "failures": [...]}; exit status 1 when any file differs.
"""
import glob
import json
import os
import sys

import numpy as np
import tifffile

d = sys.argv[1]
failures, n = [], 0
for tif in sorted(glob.glob(os.path.join(d, "*.tif"))):
    want = np.load(tif[:-4] + ".npy")
    try:
        with tifffile.TiffFile(tif) as t:
            page = t.pages[0]
            got = page.asarray()
            if want.shape[0] == 1 and got.ndim == 2:
                got = got[None]
            elif page.planarconfig == 1 and got.ndim == 3:
                got = np.moveaxis(got, -1, 0)
        ok = got.shape == want.shape and np.array_equal(got.astype(want.dtype), want, equal_nan=True)
    except Exception as e:  # noqa: BLE001
        ok = False
        failures.append(f"{os.path.basename(tif)}: {e}")
        continue
    n += 1
    if not ok:
        failures.append(os.path.basename(tif))
print(json.dumps(dict(checked=n, failures=failures[:50])))
sys.exit(1 if failures else 0)
