#!/usr/bin/env python3
"""Checks a label COG written by `spectralx predict --mode tile` against its input scene.

    python3 scripts/scenes/check_scene_output.py SCENE.tif LABELS.tif --classes K [--nodata-block R,C,H,W]

Prints one JSON object and exits non-zero when a check fails:
- rio-cogeo's validator (errors and warnings);
- same CRS, transform and size as the input; GDAL_NODATA 255; a colour table with an entry for every class;
  internal overviews;
- nodata: every pixel where every input band is the input's nodata value is 255, and no other pixel is;
  the --nodata-block rectangle (default: make_test_scene.py's) must lie in the scene, be nodata in the input
  and be 255 in the labels.
"""
import argparse
import json
import sys

import numpy as np
import rasterio
from rio_cogeo.cogeo import cog_validate

ap = argparse.ArgumentParser()
ap.add_argument("scene")
ap.add_argument("labels")
ap.add_argument("--classes", type=int, required=True)
ap.add_argument("--nodata-block", default="1000,200,100,100", help="R,C,H,W of the scene's nodata block (make_test_scene.py's)")
a = ap.parse_args()

report = {}
ok = True
valid, errors, warnings = cog_validate(a.labels, quiet=True)
report["cog_valid"] = bool(valid)
report["cog_errors"] = errors
report["cog_warnings"] = warnings
ok &= bool(valid) and not warnings

with rasterio.open(a.scene) as src, rasterio.open(a.labels) as out:
    report["crs_equal"] = src.crs == out.crs
    report["transform_equal"] = src.transform.almost_equals(out.transform)
    report["size_equal"] = (src.width, src.height) == (out.width, out.height)
    report["nodata"] = out.nodata
    cmap = out.colormap(1)
    report["colormap_entries"] = len(cmap)
    report["distinct_class_colours"] = len({cmap[i] for i in range(a.classes)})
    report["overviews"] = out.overviews(1)
    report["block_shapes"] = out.block_shapes[0]
    report["compression"] = str(out.compression)
    labels = out.read(1)
    invalid = np.ones((src.height, src.width), bool)
    nd = src.nodata
    for b in range(1, src.count + 1):
        invalid &= src.read(b) == nd
    report["invalid_input_pixels"] = int(invalid.sum())
    report["labels_255"] = int((labels == 255).sum())
    report["nodata_exact"] = bool(np.array_equal(labels == 255, invalid))
    r, c, h, w = map(int, a.nodata_block.split(","))
    # The block must lie inside the scene and be nodata in the input, else the check proves nothing.
    inside = r + h <= src.height and c + w <= src.width
    report["block_inside_scene"] = inside
    report["block_invalid_in_input"] = bool(inside and invalid[r:r + h, c:c + w].all())
    report["block_all_255"] = bool(inside and (labels[r:r + h, c:c + w] == 255).all())
    ok &= report["block_invalid_in_input"] and report["block_all_255"]
    report["max_class"] = int(labels[labels != 255].max()) if (labels != 255).any() else None
    ok &= report["crs_equal"] and report["transform_equal"] and report["size_equal"] and out.nodata == 255
    ok &= len(cmap) >= a.classes and report["distinct_class_colours"] == a.classes and len(report["overviews"]) > 0
    ok &= report["nodata_exact"]
report["ok"] = bool(ok)
print(json.dumps(report, indent=1, default=str))
sys.exit(0 if ok else 1)
