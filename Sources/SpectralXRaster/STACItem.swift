import Foundation

/// The raster assets of a STAC Item and the bands each holds, and the choice of which asset band
/// feeds which band of a model: by name (`assets` given in order, all bands of each, as `--stack`
/// takes files) or by centre wavelength against the wavelengths a domain was built for.
///
/// Bands are read from STAC 1.1 `bands` (`eo:center_wavelength`), from the eo extension's asset
/// `eo:bands` (`center_wavelength`), and from the older form where an asset's `eo:bands` lists
/// indices into the item's `properties["eo:bands"]`. Wavelengths are in micrometres, as STAC writes them.
public struct STACItem: Sendable, Equatable {
    public struct Band: Sendable, Equatable {
        public var name: String?
        public var commonName: String?
        /// Centre wavelength in µm (nil when the catalogue gives none).
        public var centerWavelength: Double?

        public init(name: String?, commonName: String?, centerWavelength: Double?) {
            self.name = name; self.commonName = commonName; self.centerWavelength = centerWavelength
        }
    }

    public struct Asset: Sendable, Equatable {
        public var key: String
        /// Absolute: relative hrefs are resolved against the item's own URL.
        public var href: String
        public var mediaType: String?
        public var roles: [String]
        public var bands: [Band]

        /// Whether pairing by wavelength may use this asset: not a rendering (`visual`, e.g.
        /// Sentinel-2's 8-bit true-colour TCI, is not reflectance), a thumbnail or an overview.
        /// Named assets are used whatever their roles.
        public var isPairable: Bool { !roles.contains { ["visual", "thumbnail", "overview"].contains($0) } }

        public init(key: String, href: String, mediaType: String?, roles: [String], bands: [Band]) {
            self.key = key; self.href = href; self.mediaType = mediaType; self.roles = roles; self.bands = bands
        }
    }

    /// One band of the model's input: band `band` (0-based) of asset `asset`.
    public struct BandPick: Sendable, Equatable {
        public var asset: String
        public var href: String
        public var band: Int
        /// The asset band's name and centre wavelength (for messages and job records).
        public var name: String?
        public var centerWavelength: Double?

        public init(asset: String, href: String, band: Int, name: String?, centerWavelength: Double?) {
            self.asset = asset; self.href = href; self.band = band; self.name = name; self.centerWavelength = centerWavelength
        }
    }

    public var id: String
    /// Raster assets (GeoTIFF media types, or role `data` without a media type), sorted by key so
    /// choices never depend on the order of a JSON object's members.
    public var assets: [Asset]

    /// Parses an item; `base` is the URL the item was read from (for relative hrefs).
    public init(json: Data, base: URL?) throws(STACError) {
        guard let root = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            throw .invalidItem("not a JSON object")
        }
        guard (root["type"] as? String) == "Feature" else { throw .invalidItem("\"type\" is not \"Feature\" (a STAC Item is a GeoJSON Feature)") }
        guard let assets = root["assets"] as? [String: Any], !assets.isEmpty else { throw .invalidItem("no \"assets\"") }
        id = root["id"] as? String ?? ""
        let itemBands = ((root["properties"] as? [String: Any])?["eo:bands"] as? [Any]) ?? []
        var out: [Asset] = []
        for key in assets.keys.sorted() {
            guard let a = assets[key] as? [String: Any], let rawHref = a["href"] as? String, !rawHref.isEmpty else {
                throw .invalidItem("asset \"\(key)\" has no \"href\"")
            }
            let type = a["type"] as? String
            let roles = a["roles"] as? [String] ?? []
            guard Self.isRaster(type: type, roles: roles) else { continue }
            guard let href = Self.resolve(rawHref, against: base) else {
                throw .invalidItem("asset \"\(key)\" has a relative or invalid href (\(rawHref.prefix(200))) and no item URL to resolve it against")
            }
            var bands: [Band] = []
            if let list = a["bands"] as? [Any] {
                bands = list.compactMap { Self.band($0, wavelengthKey: "eo:center_wavelength") }
            } else if let list = a["eo:bands"] as? [Any] {
                for entry in list {
                    if let index = (entry as? NSNumber).map({ $0.intValue }) {
                        // STAC 0.9: indices into the item's eo:bands.
                        guard itemBands.indices.contains(index), let b = Self.band(itemBands[index], wavelengthKey: "center_wavelength") else {
                            throw .invalidItem("asset \"\(key)\" names eo:band \(index), which the item does not have")
                        }
                        bands.append(b)
                    } else if let b = Self.band(entry, wavelengthKey: "center_wavelength") {
                        bands.append(b)
                    }
                }
            }
            out.append(Asset(key: key, href: href, mediaType: type, roles: roles, bands: bands))
        }
        guard !out.isEmpty else { throw .invalidItem("no raster asset (GeoTIFF media type or role \"data\")") }
        self.assets = out
    }

    public init(id: String, assets: [Asset]) {
        self.id = id
        self.assets = assets.sorted { $0.key < $1.key }
    }

    /// Every band of the named assets, in the given order (the assets' band count is read from the
    /// files later, so an asset the item lists no bands for counts as one band here).
    public func pick(assets keys: [String]) throws(STACError) -> [BandPick] {
        var out: [BandPick] = []
        for key in keys {
            guard let a = assets.first(where: { $0.key == key }) else {
                throw .unknownAsset(key, known: assets.map(\.key))
            }
            if a.bands.isEmpty {
                out.append(BandPick(asset: a.key, href: a.href, band: 0, name: nil, centerWavelength: nil))
            } else {
                for (i, b) in a.bands.enumerated() {
                    out.append(BandPick(asset: a.key, href: a.href, band: i, name: b.name, centerWavelength: b.centerWavelength))
                }
            }
        }
        return out
    }

    /// The default tolerance for `pair`: 2.5 % of the wanted wavelength, at least 10 nm (Sentinel-2's
    /// B08 at 0.842 µm and B8A at 0.865 µm stay apart; the same sensor's bands as catalogued by
    /// different providers, which differ by a few nm, still match).
    public static func defaultTolerance(for wavelength: Double) -> Double { max(0.010, 0.025 * wavelength) }

    /// For each wanted wavelength (µm), the asset band whose centre wavelength is nearest, within
    /// `tolerance` (nil: `defaultTolerance`), each asset band used at most once. Pairs are taken
    /// closest first over all (wanted, offered) pairs, so a near band is never taken by a farther
    /// want. A wanted band left without a partner is an error naming it and its nearest offer.
    public func pair(wavelengths wanted: [Double], tolerance: Double? = nil) throws(STACError) -> [BandPick] {
        var offered: [BandPick] = []
        for a in assets where a.isPairable {
            for (i, b) in a.bands.enumerated() where b.centerWavelength != nil {
                offered.append(BandPick(asset: a.key, href: a.href, band: i, name: b.name, centerWavelength: b.centerWavelength))
            }
        }
        guard !offered.isEmpty else { throw .noWavelengths(item: id) }
        var candidates: [(distance: Double, want: Int, offer: Int)] = []
        for (w, lambda) in wanted.enumerated() {
            let tol = tolerance ?? Self.defaultTolerance(for: lambda)
            for (o, p) in offered.enumerated() {
                let d = abs(p.centerWavelength! - lambda)
                if d <= tol { candidates.append((d, w, o)) }
            }
        }
        // Ties broken by want then offer index: the same item always pairs the same way.
        candidates.sort { ($0.distance, $0.want, $0.offer) < ($1.distance, $1.want, $1.offer) }
        var chosen = [Int?](repeating: nil, count: wanted.count)
        var used = Set<Int>()
        for c in candidates where chosen[c.want] == nil && !used.contains(c.offer) {
            chosen[c.want] = c.offer
            used.insert(c.offer)
        }
        if let missing = chosen.firstIndex(where: { $0 == nil }) {
            let lambda = wanted[missing]
            let nearest = offered.min { abs($0.centerWavelength! - lambda) < abs($1.centerWavelength! - lambda) }!
            throw .unmatchedBand(index: missing, wavelength: lambda, tolerance: tolerance ?? Self.defaultTolerance(for: lambda),
                                 nearest: "\(nearest.asset)\(nearest.name.map { " (\($0))" } ?? "") at \(nearest.centerWavelength!) µm")
        }
        return chosen.map { offered[$0!] }
    }

    static func isRaster(type: String?, roles: [String]) -> Bool {
        if let type {
            let t = type.lowercased()
            return t.hasPrefix("image/tiff") || t.hasPrefix("image/geotiff") || t.hasPrefix("image/vnd.stac.geotiff")
        }
        return roles.contains("data")
    }

    static func band(_ any: Any, wavelengthKey: String) -> Band? {
        guard let d = any as? [String: Any] else { return nil }
        let w = (d[wavelengthKey] as? NSNumber)?.doubleValue ?? (d["center_wavelength"] as? NSNumber)?.doubleValue
        return Band(name: d["name"] as? String, commonName: (d["eo:common_name"] ?? d["common_name"]) as? String,
                    centerWavelength: w.flatMap { $0.isFinite && $0 > 0 ? $0 : nil })
    }

    static func resolve(_ href: String, against base: URL?) -> String? {
        if let u = URL(string: href), u.scheme != nil { return u.absoluteString }
        guard let base, let u = URL(string: href, relativeTo: base) else { return nil }
        return u.absoluteURL.absoluteString
    }
}

/// Why a STAC Item cannot feed a model; each names what is wrong (the API answers 422).
public enum STACError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidItem(String)
    case unknownAsset(String, known: [String])
    /// The item gives no centre wavelengths, so bands cannot be paired: name the assets instead.
    case noWavelengths(item: String)
    /// Band `index` (0-based) of the model, at `wavelength` µm, has no asset band within `tolerance`.
    case unmatchedBand(index: Int, wavelength: Double, tolerance: Double, nearest: String)

    public var description: String {
        switch self {
        case .invalidItem(let s): return "invalid STAC item: \(s)"
        case let .unknownAsset(key, known): return "the STAC item has no raster asset \"\(key)\" (it has \(known.joined(separator: ", ")))"
        case .noWavelengths(let item):
            return "the STAC item \(item.isEmpty ? "" : "\"\(item)\" ")gives no band centre wavelengths; list the assets to use, in band order"
        case let .unmatchedBand(index, wavelength, tolerance, nearest):
            return "no asset band of the STAC item is within \(Self.um(tolerance)) µm of the domain's band \(index + 1) "
                + "(\(Self.um(wavelength)) µm); the nearest free or taken is \(nearest)"
        }
    }

    static func um(_ x: Double) -> String { String(format: "%.4g", x) }
}

/// Some bands of a raster, in a given order (an asset band picked from a multi-band file).
public struct BandSubsetSource: RasterSource {
    public let source: any RasterSource
    /// 0-based band indices into `source`.
    public let picks: [Int]

    public init(_ source: any RasterSource, bands picks: [Int]) throws {
        guard !picks.isEmpty else { throw RasterError.invalidArgument("no bands picked") }
        for b in picks where !(0..<source.bands).contains(b) {
            throw RasterError.invalidArgument("band \(b + 1) picked from a raster of \(source.bands) bands")
        }
        self.source = source
        self.picks = picks
    }

    public var width: Int { source.width }
    public var height: Int { source.height }
    public var bands: Int { picks.count }
    public var sampleType: SampleType { source.sampleType }
    public var geo: GeoReference { source.geo }
    public var bandNodata: [Double?] { picks.map { source.bandNodata[$0] } }
    public var hasMask: Bool { source.hasMask }

    public func read(_ window: PixelWindow) throws -> Raster {
        var storage: [UInt8] = []
        return try read(window, reusing: &storage)
    }

    public func read(_ window: PixelWindow, reusing storage: inout [UInt8]) throws -> Raster {
        let all = try source.read(window)
        if picks == Array(0..<source.bands) { return all }
        let plane = window.width * window.height * all.sampleType.bytes
        var out = [UInt8]()
        out.reserveCapacity(plane * picks.count)
        for b in picks { out.append(contentsOf: all.data[b * plane..<(b + 1) * plane]) }
        return try Raster(width: window.width, height: window.height, bands: picks.count, sampleType: all.sampleType, data: out, geo: all.geo)
    }

    public func readMask(_ window: PixelWindow) throws -> [UInt8]? { try source.readMask(window) }
}
