#!/usr/bin/env python3
"""Reads a GeoTIFF written by the Swift writer with rasterio (GDAL) and tifffile and prints JSON:
crs (EPSG), transform (GDAL order), nodata, dtype, count, width, height, block shape, compression,
data sum and whether tifffile decodes the same pixels.

Usage: python3 scripts/raster/check_geotiff.py FILE.tif
"""
import json
import sys

import numpy as np
import rasterio
import tifffile

path = sys.argv[1]
with rasterio.open(path) as ds:
    data = ds.read()
    res = dict(
        epsg=ds.crs.to_epsg() if ds.crs else None,
        transform=list(ds.transform.to_gdal()),
        nodata=ds.nodata,
        dtype=str(data.dtype),
        count=ds.count,
        width=ds.width,
        height=ds.height,
        block_shapes=[list(b) for b in ds.block_shapes],
        compression=str(ds.compression.value) if ds.compression else None,
        sum=float(data.astype(np.float64).sum()),
    )
t = tifffile.imread(path)
if t.ndim == 2:
    t = t[None]
res["tifffile_equal"] = bool(t.shape == data.shape and np.array_equal(t, data))
print(json.dumps(res))
