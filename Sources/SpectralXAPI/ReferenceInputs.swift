import Foundation
import SpectralXEngine
import SpectralXFetch
import SpectralXHTTP
import SpectralXRaster
import SpectralXRemote

/// Scenes by reference in a job body: `{"inputs": {"href": "…"}}`, `{"inputs": {"hrefs": ["…", …]}}`
/// (stacked like `--stack`) or `{"inputs": {"stac_item": "…", "assets": [...]}}` (default: the
/// assets paired with the domain's wavelengths). Resolved and opened at submission, so a URL the
/// allow-list refuses, a 404 or an unmatched band is a 4xx then, not a failed job later; the job
/// stores the resolved hrefs (`ReferenceDocument`) and reads them in place when it runs.
enum ReferenceInputs {
    /// Largest JSON job body, in bytes.
    static let maxBodyBytes = 1 << 20
    static let maxHrefs = 64

    /// Whether a Content-Type is JSON (a job by reference).
    static func isJSON(_ contentType: String) -> Bool {
        contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } == "application/json"
    }

    /// The reference document (hrefs in band order) and its scene, every href opened (headers only).
    static func resolve(body: Data, domain: LoadedDomain, configuration: APIConfiguration) throws -> (ReferenceDocument, any RasterSource) {
        guard body.count <= maxBodyBytes else {
            throw APIError(.payloadTooLarge, HTTPErrorCode.payloadTooLarge.rawValue, "a JSON job body is at most \(maxBodyBytes) bytes")
        }
        guard let root = try? JSONSerialization.jsonObject(with: body) as? [String: Any], let inputs = root["inputs"] as? [String: Any] else {
            throw APIError(.badRequest, "invalid_parameter", "the body must be a JSON object with an \"inputs\" object")
        }
        guard configuration.fetchPolicy.isEnabled else {
            throw APIError(.forbidden, "fetch_disabled", "scenes by reference are off on this server (start it with --fetch-allow)")
        }
        let fetcher = Fetcher(configuration: configuration.fetchConfiguration)
        var hrefs: [String]
        if let item = inputs["stac_item"] as? String {
            let assets = inputs["assets"].map { $0 as? [String] }
            if case .some(nil) = assets { throw APIError(.badRequest, "invalid_parameter", "\"assets\" must be an array of asset names") }
            hrefs = try map { try fetcher.hrefsForItem(item, wavelengthsUm: domain.config.wavelengths, assets: assets ?? nil).map(\.href) }
        } else if let one = inputs["href"] as? String {
            hrefs = [one]
        } else if let many = inputs["hrefs"] as? [String], !many.isEmpty {
            hrefs = many
        } else {
            throw APIError(.badRequest, "invalid_parameter", "\"inputs\" needs \"href\" (a string), \"hrefs\" (strings) or \"stac_item\"")
        }
        guard hrefs.count <= maxHrefs else { throw APIError(.badRequest, "invalid_parameter", "at most \(maxHrefs) hrefs") }
        // Open every href now (header reads only): refusals, 404s and non-TIFFs answer this request.
        let source = try map {
            do { return try RemoteScene.open(stack: hrefs, fetcher: fetcher, limits: configuration.rasterLimits) } catch let e as RasterError {
                throw APIError(.unprocessableContent, .incompatibleStack, e.description)
            }
        }
        return (ReferenceDocument(hrefs: hrefs), source)
    }

    /// The request body of a JSON request (bounded by `maxBodyBytes`).
    static func body(_ request: HTTPRequest) throws -> Data {
        let tooLarge = APIError(.payloadTooLarge, HTTPErrorCode.payloadTooLarge.rawValue, "a JSON body is at most \(maxBodyBytes) bytes")
        switch request.body {
        case .data(let d): guard d.count <= maxBodyBytes else { throw tooLarge }; return d
        case .file(let url, _):
            guard let d = try? Data(contentsOf: url, options: .alwaysMapped), d.count <= maxBodyBytes else { throw tooLarge }
            return d
        }
    }

    /// Runs `body`, turning fetch and STAC failures into 4xx errors naming the URL.
    static func map<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch {
            if let e = apiError(for: error) { throw e }
            if let e = error as? RasterError { throw APIError(.unprocessableContent, "href_unreadable", e.description) }
            throw error
        }
    }

    /// The 4xx of a fetch or STAC failure (nil for other errors).
    static func apiError(for error: any Error) -> APIError? {
        switch error {
        case RemoteError.refused: return APIError(.forbidden, "fetch_refused", "\(error)")
        case RemoteError.budget: return APIError(.unprocessableContent, "fetch_limit", "\(error)")
        case let e as RemoteError: return APIError(.unprocessableContent, "href_unreadable", e.description)
        case let e as STACItem.Failure: return APIError(.unprocessableContent, "stac_item_unusable", e.description)
        default: return nil
        }
    }
}

/// What a job by reference stores as its input (`input.ref.json`): the hrefs, in band order.
struct ReferenceDocument: Codable {
    var hrefs: [String]
}

extension ReferenceDocument {
    /// Opens a stored document's scene (the jobs executor's `openReference`).
    static func opener(_ configuration: APIConfiguration) -> @Sendable (Data, RasterLimits) throws -> (any RasterSource, FetchCounters) {
        let fetch = configuration.fetchConfiguration
        return { data, limits in
            let doc = try JSONDecoder().decode(ReferenceDocument.self, from: data)
            let fetcher = Fetcher(configuration: fetch)
            return (try RemoteScene.open(stack: doc.hrefs, fetcher: fetcher, limits: limits), fetcher.counters)
        }
    }
}

extension APIConfiguration {
    /// The fetcher settings of jobs by reference.
    var fetchConfiguration: Fetcher.Configuration { Fetcher.Configuration(policy: fetchPolicy) }
    /// For `PipelineSceneJobExecutor(openReference:)`: opens a job by reference's stored hrefs.
    public var referenceOpener: @Sendable (Data, RasterLimits) throws -> (any RasterSource, FetchCounters) { ReferenceDocument.opener(self) }
}
