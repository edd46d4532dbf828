#!/usr/bin/env python3
"""Validates STAC MLM items offline: JSON Schema (STAC 1.0.0 item, MLM 1.5.2, eo, classification, file,
and what they reference, kept in scripts/ogc/stac-schemas) with `jsonschema`, then reads each item with
`pystac`. Usage: check_stac.py ITEM.json [...] (a file may also hold a FeatureCollection of items).
Exit 0 when every item is valid; prints "skip: ..." and exits 0 when jsonschema is missing (pystac
is optional: reported, not required, so the schema check still runs on a bare machine)."""
import json
import os
import sys

try:
    import jsonschema
    from referencing import Registry, Resource
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(0)

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stac-schemas")
# The URL each schema is referenced by -> the file kept here (no network access at any time).
SCHEMAS = {
    "https://schemas.stacspec.org/v1.0.0/item-spec/json-schema/item.json": "stac-1.0.0-item.json",
    "https://schemas.stacspec.org/v1.0.0/item-spec/json-schema/basics.json": "stac-1.0.0-basics.json",
    "https://schemas.stacspec.org/v1.0.0/item-spec/json-schema/datetime.json": "stac-1.0.0-datetime.json",
    "https://schemas.stacspec.org/v1.0.0/item-spec/json-schema/instrument.json": "stac-1.0.0-instrument.json",
    "https://schemas.stacspec.org/v1.0.0/item-spec/json-schema/licensing.json": "stac-1.0.0-licensing.json",
    "https://schemas.stacspec.org/v1.0.0/item-spec/json-schema/provider.json": "stac-1.0.0-provider.json",
    "https://geojson.org/schema/Feature.json": "geojson-Feature.json",
    "https://geojson.org/schema/Geometry.json": "geojson-Geometry.json",
    "https://stac-extensions.github.io/mlm/v1.5.2/schema.json": "mlm-v1.5.2.json",
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json": "eo-v1.1.0.json",
    "https://stac-extensions.github.io/classification/v1.1.0/schema.json": "classification-v1.1.0.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json": "file-v2.1.0.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json": "raster-v1.1.0.json",
    "https://stac-extensions.github.io/processing/v1.1.0/schema.json": "processing-v1.1.0.json",
}


def load(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return json.load(f)


def registry():
    pairs = []
    for url, name in SCHEMAS.items():
        s = load(name)
        s["$id"] = url  # some files name another version in $id (processing v1.1.0 says v1.0.0)
        pairs.append((url, Resource.from_contents(s)))
    return Registry().with_resources(pairs)


def validate(item, reg):
    errors = []
    urls = ["https://schemas.stacspec.org/v1.0.0/item-spec/json-schema/item.json"] + item.get("stac_extensions", [])
    for url in urls:
        if url not in SCHEMAS:
            errors.append(f"no schema kept for {url}")
            continue
        schema = reg.contents(url)
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
        for e in cls(schema, registry=reg).iter_errors(item):
            errors.append(f"{url}: {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}")
    return errors


def main(paths):
    reg = registry()
    failed = 0
    for p in paths:
        with open(p, encoding="utf-8") as f:
            doc = json.load(f)
        items = doc["features"] if doc.get("type") == "FeatureCollection" else [doc]
        for item in items:
            errs = validate(item, reg)
            try:
                import pystac
                it = pystac.Item.from_dict(item)
                mlm = it.properties.get("mlm:name")
                read = f"pystac {pystac.__version__} reads it (mlm:name {mlm}, {len(it.assets)} assets)"
            except ImportError:
                read = "pystac not installed: not read"
            except Exception as e:  # a reading failure is a failure of the item
                errs.append(f"pystac: {e}")
                read = "pystac failed"
            status = "valid" if not errs else "INVALID"
            print(f"{p}: {item.get('id')}: {status}; {read}")
            for e in errs:
                print("  " + e)
            failed += bool(errs)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
