import Foundation

/// Picks the assets of a STAC item that hold a domain's bands: the assets named by the caller, in
/// order, or (by default) for each of the domain's band centre wavelengths the single-band asset
/// whose `center_wavelength` (eo extension `eo:bands`, or STAC 1.1 `bands` with
/// `eo:center_wavelength`, in µm) is nearest within a tolerance, each asset used once.
public enum STACItem {
    public struct Selection: Sendable, Equatable {
        public var asset: String
        /// Absolute (relative hrefs are resolved against the item's URL).
        public var href: String
        /// nil when the caller named the asset and it declares no wavelength.
        public var centerWavelengthUm: Double?
    }

    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        case notAnItem(String)
        case unknownAsset(String)
        /// Band `index` (0-based) of the domain, at `wavelengthUm`, has no asset within the tolerance.
        case unmatchedBand(index: Int, wavelengthUm: Double, toleranceUm: Double, nearest: String?)

        public var description: String {
            switch self {
            case .notAnItem(let s): return "not a STAC item: \(s)"
            case .unknownAsset(let a): return "the STAC item has no asset '\(a)'"
            case let .unmatchedBand(i, w, t, n):
                return "band \(i) (\(w) µm) has no single-band asset within \(t) µm in the STAC item"
                    + (n.map { " (nearest: \($0))" } ?? "")
            }
        }
    }

    /// Largest STAC item accepted, in bytes.
    public static let maxBytes = 4 << 20

    /// The assets for `wavelengthsUm` (or the named `assets`), in the domain's band order.
    public static func select(item data: Data, itemURL: URL, wavelengthsUm: [Double], assets named: [String]?,
                              toleranceUm: Double = 0.05) throws -> [Selection] {
        guard data.count <= maxBytes else { throw Failure.notAnItem("larger than \(maxBytes) bytes") }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw Failure.notAnItem("not a JSON object") }
        guard (root["type"] as? String) == "Feature", let assets = root["assets"] as? [String: Any] else {
            throw Failure.notAnItem("no \"type\": \"Feature\" with \"assets\"")
        }
        func href(_ name: String) throws -> String {
            guard let a = assets[name] as? [String: Any], let h = a["href"] as? String,
                  let u = URL(string: h, relativeTo: itemURL)?.absoluteURL else { throw Failure.unknownAsset(name) }
            return u.absoluteString
        }
        // Single-band assets with a centre wavelength.
        var single: [(name: String, um: Double)] = []
        for (name, value) in assets {
            guard let a = value as? [String: Any] else { continue }
            let bands = (a["eo:bands"] as? [[String: Any]]) ?? (a["bands"] as? [[String: Any]]) ?? []
            guard bands.count == 1 else { continue }
            let b = bands[0]
            if let um = (b["center_wavelength"] as? NSNumber ?? b["eo:center_wavelength"] as? NSNumber)?.doubleValue { single.append((name, um)) }
        }
        single.sort { $0.name < $1.name }   // deterministic ties
        let wavelengthOf = Dictionary(single.map { ($0.name, $0.um) }, uniquingKeysWith: { a, _ in a })
        if let named {
            return try named.map { Selection(asset: $0, href: try href($0), centerWavelengthUm: wavelengthOf[$0]) }
        }
        // Nearest pairs first, each band and each asset used once.
        var pairs: [(band: Int, asset: Int, d: Double)] = []
        for (i, w) in wavelengthsUm.enumerated() {
            for (j, s) in single.enumerated() where abs(s.um - w) <= toleranceUm { pairs.append((i, j, abs(s.um - w))) }
        }
        pairs.sort { ($0.d, $0.band, $0.asset) < ($1.d, $1.band, $1.asset) }
        var bandTaken = [Int?](repeating: nil, count: wavelengthsUm.count)
        var assetUsed = Set<Int>()
        for p in pairs where bandTaken[p.band] == nil && !assetUsed.contains(p.asset) {
            bandTaken[p.band] = p.asset
            assetUsed.insert(p.asset)
        }
        return try wavelengthsUm.enumerated().map { i, w in
            guard let j = bandTaken[i] else {
                let nearest = single.min { abs($0.um - w) < abs($1.um - w) }.map { "\($0.name) at \($0.um) µm" }
                throw Failure.unmatchedBand(index: i, wavelengthUm: w, toleranceUm: toleranceUm, nearest: nearest)
            }
            return Selection(asset: single[j].name, href: try href(single[j].name), centerWavelengthUm: single[j].um)
        }
    }
}

extension Fetcher {
    /// Fetches the STAC item at `itemHref` (checked against the policy like any href) and selects
    /// its assets for the domain's wavelengths (see `STACItem.select`).
    public func hrefsForItem(_ itemHref: String, wavelengthsUm: [Double], assets: [String]?, toleranceUm: Double = 0.05) throws -> [STACItem.Selection] {
        guard let url = URL(string: itemHref) else { throw STACItem.Failure.notAnItem("'\(itemHref.prefix(80))' is not a URL") }
        let data = try document(itemHref, limit: STACItem.maxBytes)
        return try STACItem.select(item: data, itemURL: url, wavelengthsUm: wavelengthsUm, assets: assets, toleranceUm: toleranceUm)
    }
}
