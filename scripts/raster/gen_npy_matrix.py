#!/usr/bin/env python3
"""NumPy-produced .npy test files for the Swift reader.

Usage: python3 scripts/raster/gen_npy_matrix.py OUT_DIR
For each dtype (u1 i1 u2 i2 u4 i4 u8 i8 f4 f8, both byte orders), C and Fortran order and format
versions 1.0/2.0/3.0 writes OUT_DIR/<name>.npy and the same values as OUT_DIR/<name>.ref.npy
(<f8, C order). Also writes object.npy (pickled, must be refused). Prints the case count.
"""
import os
import sys

import numpy as np
from numpy.lib import format as npformat

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(5)
n = 0
for code in ["u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8"]:
    for bo in "<>":
        dt = np.dtype(bo + code)
        for fortran in [False, True]:
            for version in [(1, 0), (2, 0), (3, 0)]:
                base = rng.integers(-100, 100, size=(2, 3, 5)) if code[0] != "u" else rng.integers(0, 250, size=(2, 3, 5))
                if code[0] == "f":
                    base = base / 8.0
                a = base.astype(dt)
                if fortran:
                    a = np.asfortranarray(a)
                name = f"{bo.replace('<', 'le').replace('>', 'be')}_{code}_{'F' if fortran else 'C'}_v{version[0]}"
                with open(os.path.join(out, name + ".npy"), "wb") as f:
                    npformat.write_array(f, a, version=version)
                np.save(os.path.join(out, name + ".ref.npy"), np.ascontiguousarray(a, dtype="<f8"))
                n += 1
np.save(os.path.join(out, "object.npy"), np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
np.save(os.path.join(out, "scalar.npy"), np.float32(2.5))
print(n)
