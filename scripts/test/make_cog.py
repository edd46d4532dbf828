#!/usr/bin/env python3
"""Writes a test Cloud-Optimized GeoTIFF with rasterio + rio-cogeo (GDAL's COG layout: IFDs first,
tiles with 4-byte leaders, overviews, optionally an internal mask).

usage: make_cog.py OUT [--size N] [--bands C] [--tile T] [--mask] [--seed S]
"""
import argparse

import numpy as np
import rasterio
from rasterio.io import MemoryFile
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_translate
from rio_cogeo.profiles import cog_profiles

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--size", type=int, default=2048)
ap.add_argument("--bands", type=int, default=3)
ap.add_argument("--tile", type=int, default=256)
ap.add_argument("--mask", action="store_true")
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()

rng = np.random.default_rng(a.seed)
n = a.size
y, x = np.mgrid[0:n, 0:n]
data = np.stack([(1000 + 400 * np.sin(x / (37.0 + 11 * b)) + 300 * np.cos(y / (53.0 + 7 * b))
                  + rng.integers(0, 64, (n, n))).astype("uint16") for b in range(a.bands)])
profile = dict(driver="GTiff", width=n, height=n, count=a.bands, dtype="uint16", crs="EPSG:32633",
               transform=from_origin(500000, 5000000, 10, 10))
with MemoryFile() as mem:
    with mem.open(**profile) as src:
        src.write(data)
        if a.mask:
            m = np.full((n, n), 255, dtype="uint8")
            m[: n // 8, : n // 8] = 0
            src.write_mask(m)
    with mem.open() as src:
        out = cog_profiles.get("deflate")
        out.update(blockxsize=a.tile, blockysize=a.tile, predictor=2)
        cog_translate(src, a.out, out, quiet=True, add_mask=a.mask, in_memory=True)
