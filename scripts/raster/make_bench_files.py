#!/usr/bin/env python3
"""Generates the decode-benchmark inputs with tifffile.

Usage: python3 scripts/raster/make_bench_files.py OUT_DIR [--small]
  OUT_DIR/tile32.tif   32-band 512x512 uint16, band-sequential strips, Deflate + predictor 2
                       (the fixture tileA layout)
  OUT_DIR/tile32_tiled.tif  same data, 256x256 tiles
  OUT_DIR/s2_13band.tif 13-band 10980x10980 uint16, band-sequential, uncompressed strips (3.1 GB;
                       --small makes it 2048x2048)
  OUT_DIR/s2_13band_deflate.tif  same scene, Deflate + predictor 2 strips
"""
import os
import sys

import numpy as np
import tifffile

out = sys.argv[1]
small = "--small" in sys.argv
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(1)


def scene(bands, n):
    yy = np.arange(n, dtype=np.float32)[:, None]
    xx = np.arange(n, dtype=np.float32)[None, :]
    base = (np.sin(yy / 37.0) * np.cos(xx / 53.0) * 1500.0 + 3000.0).astype(np.float32)
    data = np.empty((bands, n, n), np.uint16)
    for b in range(bands):
        noise = rng.integers(0, 64, size=(n, n), dtype=np.uint16)
        data[b] = (base * (0.6 + 0.03 * b)).astype(np.uint16) + noise
    return data


t = scene(32, 512)
tifffile.imwrite(os.path.join(out, "tile32.tif"), t, photometric="minisblack", planarconfig="separate",
                 compression="zlib", predictor=2, rowsperstrip=8, metadata=None)
tifffile.imwrite(os.path.join(out, "tile32_tiled.tif"), t, photometric="minisblack", planarconfig="separate",
                 compression="zlib", predictor=2, tile=(256, 256), metadata=None)
n = 2048 if small else 10980
s = scene(13, n)
tifffile.imwrite(os.path.join(out, "s2_13band.tif"), s, photometric="minisblack", planarconfig="separate",
                 rowsperstrip=64, bigtiff=True, metadata=None)
tifffile.imwrite(os.path.join(out, "s2_13band_deflate.tif"), s, photometric="minisblack", planarconfig="separate",
                 compression="zlib", predictor=2, rowsperstrip=64, bigtiff=True, metadata=None, maxworkers=2)
print("ok")
