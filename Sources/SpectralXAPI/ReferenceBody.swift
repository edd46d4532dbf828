import Foundation
import SpectralXEngine
import SpectralXHTTP
import SpectralXRaster

/// A scene by reference, as a JSON body of `…/segment` and `…/jobs` (`Content-Type: application/json`)
/// or as the OGC `scene` input's `href`:
///
///     {"inputs": {"href": "https://…/scene.tif"}}
///     {"inputs": {"href": ["https://…/B02.tif", "https://…/B03.tif", …]}}     (stacked in order, as --stack; or "hrefs")
///     {"inputs": {"stac_item": "https://…/item.json"}}                         (bands paired by wavelength)
///     {"inputs": {"stac_item": "…", "assets": ["B02", "B03", …]}}              (those assets, in order)
///
/// `stac_item` may also be the item itself (an object) when its asset hrefs are absolute;
/// `wavelength_tolerance_um` overrides the pairing's tolerance. URLs with user information are
/// refused: credentials never enter a job record or a log.
enum ReferenceBody {
    /// A reference body is small: anything larger is not one.
    static let maxBytes = 1 << 20
    static let maxHrefs = 64
    static let maxHrefLength = 4096

    enum Inputs: Equatable {
        case hrefs([String])
        case stac(item: String?, inline: Data?, assets: [String]?, tolerance: Double?)
    }

    static func bad(_ message: String) -> APIError { APIError(.badRequest, .invalidParameter, message) }

    /// A request body that should hold a reference, size checked before it is read.
    static func read(_ body: HTTPBody) throws -> Data {
        guard body.count <= maxBytes else {
            throw APIError(.payloadTooLarge, HTTPErrorCode.payloadTooLarge.rawValue, "a JSON scene reference is at most \(maxBytes) bytes")
        }
        return try body.readData()
    }

    /// The `inputs` object of a body.
    static func parse(_ data: Data) throws -> Inputs {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw bad("the body is not a JSON object; send {\"inputs\": {\"href\": …}} or {\"inputs\": {\"stac_item\": …}}")
        }
        guard let inputs = root["inputs"] as? [String: Any] else { throw bad("the JSON body has no \"inputs\" object") }
        return try parse(inputs: inputs)
    }

    static func parse(inputs: [String: Any]) throws -> Inputs {
        var inputs = inputs
        if let list = inputs.removeValue(forKey: "hrefs") {
            // `hrefs` is `href` given as a list.
            guard inputs["href"] == nil, list is [Any] else { throw bad("give either \"href\" or \"hrefs\" (a list of URLs)") }
            inputs["href"] = list
        }
        let known: Set<String> = ["href", "stac_item", "assets", "wavelength_tolerance_um"]
        if let unknown = inputs.keys.sorted().first(where: { !known.contains($0) }) {
            throw bad("unknown input '\(unknown)'; a scene reference takes href, or stac_item with assets and wavelength_tolerance_um")
        }
        switch (inputs["href"], inputs["stac_item"]) {
        case (nil, nil): throw bad("give the scene as \"href\" (one URL or a list) or \"stac_item\"")
        case (.some, .some): throw bad("give either \"href\" or \"stac_item\", not both")
        case (let h?, nil):
            if inputs["assets"] != nil || inputs["wavelength_tolerance_um"] != nil {
                throw bad("\"assets\" and \"wavelength_tolerance_um\" go with \"stac_item\"")
            }
            let list: [Any] = (h as? [Any]) ?? [h]
            guard !list.isEmpty, list.count <= maxHrefs else { throw bad("\"href\" lists 1 to \(maxHrefs) URLs") }
            return .hrefs(try list.map(checkedURL))
        case (nil, let s?):
            var assets: [String]? = nil
            if let a = inputs["assets"] {
                guard let names = a as? [String], !names.isEmpty, names.count <= maxHrefs else {
                    throw bad("\"assets\" must list 1 to \(maxHrefs) asset keys of the STAC item, in band order")
                }
                assets = names
            }
            var tolerance: Double? = nil
            if let t = inputs["wavelength_tolerance_um"] {
                guard let x = (t as? NSNumber)?.doubleValue, x > 0, x <= 1 else {
                    throw bad("\"wavelength_tolerance_um\" must be a number in (0, 1] µm")
                }
                tolerance = x
            }
            if let object = s as? [String: Any] {
                guard let data = try? JSONSerialization.data(withJSONObject: object) else { throw bad("\"stac_item\" is not valid JSON") }
                return .stac(item: nil, inline: data, assets: assets, tolerance: tolerance)
            }
            return .stac(item: try checkedURL(s), inline: nil, assets: assets, tolerance: tolerance)
        }
    }

    /// A URL string without credentials (the fetch policy checks the rest when it is opened).
    static func checkedURL(_ any: Any) throws -> String {
        guard let s = any as? String, !s.isEmpty, s.utf8.count <= maxHrefLength else {
            throw bad("a scene href must be a URL string of at most \(maxHrefLength) bytes")
        }
        guard let u = URL(string: s), let scheme = u.scheme?.lowercased() else { throw bad("'\(s.prefix(200))' is not an absolute URL") }
        if u.user != nil || u.password != nil {
            throw bad("URLs with user information are not accepted (credentials are never stored); S3 objects are read with the server's credentials")
        }
        guard ["http", "https", "s3", "file"].contains(scheme) else {
            throw bad("scheme '\(scheme)' is not read; use http, https or s3")
        }
        return s
    }

    /// The reference the inputs name, for `domain`: a STAC item is read and its bands chosen.
    static func reference(_ inputs: Inputs, domain: LoadedDomain, opener: any SceneOpening) throws -> SceneReference {
        switch inputs {
        case .hrefs(let hrefs):
            return SceneReference(sources: hrefs.map { SceneReference.Source(href: $0) })
        case let .stac(url, inline, assets, tolerance):
            let item: STACItem
            do {
                if let url {
                    item = try STACItem(json: try opener.document(url, limit: maxBytes), base: URL(string: url))
                } else {
                    item = try STACItem(json: inline ?? Data(), base: nil)
                }
                let picks = try assets.map { try item.pick(assets: $0) } ?? item.pair(wavelengths: domain.config.wavelengths, tolerance: tolerance)
                for p in picks { _ = try checkedURL(p.href) }
                return SceneReference(picks: picks, stacItem: url)
            } catch let e as STACError {
                throw ErrorMapping.map(e)
            }
        }
    }

    /// Resolves, opens and pins a reference (404 and policy refusals answered here, before any job is made).
    static func open(_ data: Data, domain: LoadedDomain, opener: (any SceneOpening)?, limits: RasterLimits) throws -> OpenedScene {
        guard let opener else { throw disabled }
        let inputs = try parse(data)
        return try opener.open(try reference(inputs, domain: domain, opener: opener), limits: limits)
    }

    static let disabled = APIError(.forbidden, .fetchNotAllowed,
                                   "this server reads no scene by reference (start it with --fetch-allow naming the hosts or URL prefixes to read)")
}
