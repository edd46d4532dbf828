#!/usr/bin/env python3
"""Writes a Sentinel-2-like scene split into per-band GeoTIFFs on 10, 20 and 60 m grids (same
extent) plus a STAC item (pystac, eo extension) describing them, with hrefs relative to the item.

usage: make_stac_scene.py DIR [--size N]   (N: pixels of the 10 m grid, a multiple of 6)
"""
import argparse
import datetime
import os

import numpy as np
import pystac
import rasterio
from pystac.extensions.eo import Band, EOExtension
from rasterio.transform import from_origin

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--size", type=int, default=600)
a = ap.parse_args()
os.makedirs(a.dir, exist_ok=True)

# name, resolution (m), centre wavelength (µm)
BANDS = [("B02", 10, 0.490), ("B03", 10, 0.560), ("B04", 10, 0.665), ("B09", 60, 0.945),
         ("B8A", 20, 0.865), ("B11", 20, 1.610), ("B12", 20, 2.190)]
rng = np.random.default_rng(3)
x0, y0 = 600000.0, 5100000.0
item = pystac.Item(id="scene", geometry={"type": "Polygon", "coordinates": [[[15, 45], [15.1, 45], [15.1, 45.1], [15, 45.1], [15, 45]]]},
                   bbox=[15, 45, 15.1, 45.1], datetime=datetime.datetime(2024, 6, 1), properties={})
EOExtension.add_to(item)
for name, res, um in BANDS:
    n = a.size * 10 // res
    data = (rng.integers(0, 3000, (1, n, n)) + int(um * 1000)).astype("uint16")
    path = os.path.join(a.dir, f"{name}.tif")
    with rasterio.open(path, "w", driver="GTiff", width=n, height=n, count=1, dtype="uint16", crs="EPSG:32633",
                       transform=from_origin(x0, y0, res, res), tiled=True, blockxsize=128, blockysize=128,
                       compress="deflate") as dst:
        dst.write(data)
    asset = pystac.Asset(href=f"./{name}.tif", media_type=pystac.MediaType.COG, roles=["data"])
    item.add_asset(name, asset)
    EOExtension.ext(asset).bands = [Band.create(name=name, center_wavelength=um)]
# A three-band asset (not a candidate for pairing by wavelength) and a thumbnail.
item.add_asset("visual", pystac.Asset(href="./B04.tif", media_type=pystac.MediaType.COG, roles=["visual"]))
EOExtension.ext(item.assets["visual"]).bands = [Band.create(name=b, center_wavelength=w) for b, w in
                                               [("B04", 0.665), ("B03", 0.56), ("B02", 0.49)]]
item.add_asset("thumbnail", pystac.Asset(href="./thumb.png", media_type=pystac.MediaType.PNG, roles=["thumbnail"]))
with open(os.path.join(a.dir, "item.json"), "w") as f:
    import json
    json.dump(item.to_dict(include_self_link=False, transform_hrefs=False), f, indent=1)
