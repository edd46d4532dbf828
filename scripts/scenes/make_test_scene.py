#!/usr/bin/env python3
"""Makes the scene used to show bounded-memory scene segmentation (issue "Scenes").

    python3 scripts/scenes/make_test_scene.py OUT.tif [--width 512 --height 4096 --bands 32]
        [--crop CROP.tif]   # also write the top-left 512x512 crop (same profile) for the RSS comparison

uint16, tiled 512x512, Deflate + horizontal predictor, pixel-interleaved, georeferenced in EPSG:32650
(UTM 50N, 10 m pixels), GDAL_NODATA=0 and a 100x100 block of nodata (every band 0) at rows 1000-1099,
columns 200-299 (below the crop, so the crop has none; check_scene_output.py --nodata-block 1000,200,100,100). The values are smooth spectral patterns plus noise,
never 0 outside the block. Needs numpy and rasterio.
"""
import argparse

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

NODATA_BLOCK = (1000, 200, 100, 100)  # row, col, height, width (inside the 512-wide scene)


def make(path, width, height, bands, row0=0, col0=0, seed=0):
    profile = dict(driver="GTiff", width=width, height=height, count=bands, dtype="uint16", crs="EPSG:32650",
                   transform=from_origin(300000 + 10 * col0, 2500000 - 10 * row0, 10, 10), nodata=0,
                   tiled=True, blockxsize=512, blockysize=512, compress="deflate", predictor=2, interleave="pixel",
                   BIGTIFF="IF_SAFER")
    rng = np.random.default_rng(seed)
    with rasterio.open(path, "w", **profile) as dst:
        for y0 in range(0, height, 512):
            h = min(512, height - y0)
            yy, xx = np.mgrid[row0 + y0:row0 + y0 + h, col0:col0 + width].astype(np.float32)
            block = np.empty((bands, h, width), np.uint16)
            for b in range(bands):
                v = (2000 + 800 * np.sin(xx / (37 + b)) * np.cos(yy / (53 + 2 * b)) + 300 * np.sin((xx + yy) / 91)
                     + 40 * b + rng.normal(0, 25, size=(h, width)))
                block[b] = np.clip(v, 1, 65535).astype(np.uint16)
            r, c, bh, bw = NODATA_BLOCK
            r -= row0 + y0
            c -= col0
            rs, re = max(r, 0), min(r + bh, h)
            cs, ce = max(c, 0), min(c + bw, width)
            if rs < re and cs < ce:
                block[:, rs:re, cs:ce] = 0
            dst.write(block, window=Window(0, y0, width, h))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--height", type=int, default=4096)
    ap.add_argument("--bands", type=int, default=32)
    ap.add_argument("--crop")
    a = ap.parse_args()
    r, c, h, w = NODATA_BLOCK
    if r + h > a.height or c + w > a.width:
        raise SystemExit(f"the nodata block {NODATA_BLOCK} does not fit a {a.width}x{a.height} scene")
    make(a.out, a.width, a.height, a.bands)
    if a.crop:
        make(a.crop, 512, 512, a.bands)
