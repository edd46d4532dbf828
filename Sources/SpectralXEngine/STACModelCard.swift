import Foundation
import SpectralXCheckpoint
import SpectralXModel
import SpectralXRaster

/// A domain's machine-readable model card: a STAC Item with the Machine Learning Model extension
/// (MLM v1.5.2) plus eo (band names and centres), classification (classes and colours) and file
/// (weight sizes and digests). Built from what the domain knows (domain.json and its weight files),
/// so `GET /v1/domains/{name}/stac` and `spectralx inspect --stac` print the same document.
public enum STACModelCard {
    public static let stacVersion = "1.0.0"
    public static let extensions = [
        "https://stac-extensions.github.io/mlm/v1.5.2/schema.json",
        "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
        "https://stac-extensions.github.io/classification/v1.1.0/schema.json",
        "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    ]

    /// A link of the item (`self`, the process description, …).
    public struct Link: Sendable {
        public var href: String
        public var rel: String
        public var type: String
        public var title: String
        public init(href: String, rel: String, type: String, title: String) {
            (self.href, self.rel, self.type, self.title) = (href, rel, type, title)
        }
    }

    /// The item for a loaded domain.
    public static func item(_ d: LoadedDomain, links: [Link] = [], assetBase: String? = nil) -> Data {
        item(config: d.config, weights: d.weights, backboneKind: d.backboneKind, colors: classColors(of: d), links: links,
             assetBase: assetBase)
    }

    /// The item for a domain described by `config` and its weight files' facts. Asset hrefs are the
    /// store-relative paths of the weight files, under `assetBase` when given (a store URL or directory).
    public static func item(config c: DomainConfig, weights w: WeightFacts, backboneKind: BackboneKind,
                            colors: [(UInt8, UInt8, UInt8)], links: [Link] = [], assetBase: String? = nil) -> Data {
        let bandNames = (1...max(1, c.bands)).map { "b\($0)" }
        // eo:bands centres only when the wavelength list names one per band (it need not: quirk Q9).
        let eoBands: [[String: Any]] = bandNames.enumerated().map { i, name in
            var b: [String: Any] = ["name": name]
            if c.wavelengths.count == c.bands { b["center_wavelength"] = c.wavelengths[i] }
            return b
        }
        let classes: [[String: Any]] = c.classNames.enumerated().map { i, name in
            var k: [String: Any] = ["value": i, "name": safeClassName(name, index: i), "description": name]
            if i < colors.count {
                let (r, g, b) = colors[i]
                k["color_hint"] = String(format: "%02X%02X%02X", r, g, b)
            }
            return k
        }
        let size = c.inputSize
        let input: [String: Any] = [
            "name": "scene",
            "description": "\(c.bands) bands; each band min–max normalised over the scene (nodata excluded), then resized "
                + "(antialiased bilinear) to \(size)×\(size) in resize mode or cut into \(size)² windows in tile mode.",
            "bands": bandNames,
            "input": ["shape": [-1, c.bands, size, size], "dim_order": ["batch", "bands", "height", "width"], "data_type": "float32"],
            // The scaling is per band and per scene (its own minimum and maximum), so no fixed numbers fit
            // `min-max`; the expression states it.
            "value_scaling": bandNames.map { _ in
                ["type": "processing", "format": "text", "expression": "(x - min(band)) / (max(band) - min(band)) over the scene"]
            },
            "resize_type": "interpolation-linear",
            "pre_processing_function": ["format": "spectralx-preprocessing", "expression": c.preprocessing],
        ]
        let output: [String: Any] = [
            "name": "labels",
            "description": "Per-pixel class (argmax of \(c.classes) logits); label 255 marks nodata in the served GeoTIFF.",
            "tasks": ["semantic-segmentation"],
            "result": ["shape": [-1, c.classes, size, size], "dim_order": ["batch", "channel", "height", "width"], "data_type": "float32"],
            "classification:classes": classes,
            "post_processing_function": ["format": "text", "expression": "argmax over the class axis; uint8 labels"],
        ]
        let kind = backboneKind == .dinov3 ? "DINOv3 ViT-L" : "ViT-L"
        var properties: [String: Any] = [
            "title": "SpectralX \(c.name)",
            "description": c.description ?? "SpectralX segmentation, domain \(c.name)",
            "datetime": NSNull(),
            "start_datetime": "1900-01-01T00:00:00Z",
            "end_datetime": "9999-12-31T23:59:59Z",
            "mlm:name": "spectralx-\(c.name)",
            "mlm:architecture": "SpectralX (frozen \(kind) backbone '\(c.backbone)', HyperT tokenizer, per-domain adapter, UPerNet head)",
            "mlm:tasks": ["semantic-segmentation"],
            "mlm:framework": "spectralx",
            "mlm:pretrained": true,
            "mlm:total_parameters": w.backboneParameters + w.adapterParameters,
            "mlm:input": [input],
            "mlm:output": [output],
            "mlm:hyperparameters": ["backbone_parameters": w.backboneParameters, "adapter_parameters": w.adapterParameters,
                                    "input_size": size, "bands": c.bands, "classes": c.classes],
            "eo:bands": eoBands,
            "spectralx:domain": c.name,
            "spectralx:backbone": c.backbone,
            "spectralx:wavelengths_um": c.wavelengths,
        ]
        if let d = c.description { properties["description"] = d }
        let base = assetBase.map { $0.hasSuffix("/") ? $0 : $0 + "/" } ?? ""
        func asset(_ href: String, _ title: String, bytes: Int, sha: String?) -> [String: Any] {
            var a: [String: Any] = [
                "href": base + href, "title": title, "type": "application/octet-stream; application=safetensors",
                "roles": ["mlm:model", "mlm:weights"], "mlm:artifact_type": "safetensors",
            ]
            if bytes > 0 { a["file:size"] = bytes }
            // Multihash: 0x12 (sha2-256), 0x20 (32 bytes), then the digest.
            if let sha { a["file:checksum"] = "1220" + sha.lowercased() }
            return a
        }
        let item: [String: Any] = [
            "type": "Feature",
            "stac_version": stacVersion,
            "stac_extensions": extensions,
            "id": "spectralx-\(c.name)",
            "geometry": NSNull(),
            "properties": properties,
            "links": links.map { ["href": $0.href, "rel": $0.rel, "type": $0.type, "title": $0.title] },
            "assets": [
                // eo 1.1 allows item-level eo:bands only when an asset lists them too: the adapter is what was
                // built for these bands (its HyperT tokenizer), so it carries them.
                "adapter": asset("domains/\(c.name)/adapter.safetensors", "adapter of domain \(c.name)",
                                 bytes: w.adapterBytes, sha: w.adapterSHA256).merging(["eo:bands": eoBands]) { a, _ in a },
                "backbone": asset("backbones/\(c.backbone).safetensors", "shared frozen backbone \(c.backbone)",
                                  bytes: w.backboneBytes, sha: w.backboneSHA256),
            ],
        ]
        let data = (try? JSONSerialization.data(withJSONObject: item, options: [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]))
        return data ?? Data("{}".utf8)
    }

    /// classification:classes names must match `^[0-9A-Za-z-_]+$`; other characters become `_`
    /// (the original name stays in `description`).
    static func safeClassName(_ name: String, index: Int) -> String {
        let mapped = String(name.unicodeScalars.map { s -> Character in
            s.isASCII && (CharacterSet.alphanumerics.contains(s) || s == "-" || s == "_") ? Character(s) : "_"
        })
        return mapped.isEmpty ? "class_\(index)" : mapped
    }
}

/// The colours of classes described by `config` (what `classColors(of:)` gives a loaded domain).
public func classColors(of config: DomainConfig) -> [(UInt8, UInt8, UInt8)] {
    if let cc = config.classColors, cc.count == config.classes {
        let parsed = cc.compactMap { DomainConfig.parseColor($0) }
        if parsed.count == cc.count { return parsed }
    }
    return ClassPalette.colors(count: config.classes)
}
