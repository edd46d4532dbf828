import SpectralXFetch
import SpectralXRaster
import SpectralXTensor

/// Policy of the HTTP API on top of the engine: who may call what, and the bounds on uploads.
public struct APIConfiguration: Sendable {
    /// Bearer token required by `PUT`/`DELETE /v1/domains/{name}`; nil leaves the admin routes open
    /// (only sensible on a private network; `serve` warns).
    public var adminToken: String?
    /// Keys accepted on the inference and domain routes (`Authorization: Bearer KEY` or `X-API-Key: KEY`);
    /// empty means no key is needed. Health, readiness, metrics and the OpenAPI document stay open.
    public var apiKeys: [String]
    /// Decoding bounds for uploaded rasters (checked before allocating).
    public var rasterLimits: RasterLimits
    /// Seconds suggested in `Retry-After` while the service is not ready.
    public var notReadyRetryAfter: Int
    /// The precision of requests and jobs that do not ask for one (`?precision=`); `serve --precision`.
    public var defaultPrecision: Precision
    /// What jobs by reference may fetch (`--fetch-allow`); empty: scenes by reference are refused.
    public var fetchPolicy = FetchPolicy()

    /// The service's default `--max-body` (256 MiB): the one place it is written.
    public static let defaultMaxBodyBytes: Int64 = 256 << 20

    public init(adminToken: String? = nil, apiKeys: [String] = [],
                rasterLimits: RasterLimits = APIConfiguration.defaultRasterLimits, notReadyRetryAfter: Int = 5,
                defaultPrecision: Precision = .fp32) {
        self.defaultPrecision = defaultPrecision
        self.adminToken = adminToken?.isEmpty == true ? nil : adminToken
        self.apiKeys = apiKeys.filter { !$0.isEmpty }
        self.rasterLimits = rasterLimits
        self.notReadyRetryAfter = notReadyRetryAfter
    }

    /// Request-body bounds: up to 32768 px a side, 2^28 pixels, 1024 bands, 2 GiB decoded.
    public static let defaultRasterLimits = RasterLimits(maxDimension: 1 << 15, maxPixels: 1 << 28, maxBands: 1024,
                                                         maxBlockBytes: 64 << 20, maxDecodedBytes: 2 << 30,
                                                         maxIFDCount: 64, maxTagCount: 512, maxTagValues: 1 << 22)
}

/// Equality of secrets in time independent of where they differ (length still leaks, as usual).
enum ConstantTime {
    static func equals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        let n = max(x.count, y.count)
        for i in 0..<n {
            let p = i < x.count ? x[i] : 0, q = i < y.count ? y[i] : 0
            diff |= p ^ q
        }
        return diff == 0
    }
}
