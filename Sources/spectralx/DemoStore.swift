import Foundation
import SpectralXCheckpoint
import SpectralXRaster

/// The embedded demo store `serve` and `predict` use when no `--models` is given: a synthetic
/// Sentinel-2-like domain (13 bands, 9 land-cover classes) made once with the deterministic weight
/// generator in a cache directory, plus a demo tile for the printed curl command.
enum DemoStore {
    static let domain = "demo"
    static let wavelengths = [0.443, 0.490, 0.560, 0.665, 0.705, 0.740, 0.783, 0.842, 0.865, 0.945, 1.375, 1.610, 2.190]
    static let classNames = ["no_data", "water", "tree_cover", "grassland", "cropland", "built_up", "bare_ground",
                             "snow_ice", "wetland"]

    /// `$SPECTRALX_CACHE`, else `$XDG_CACHE_HOME/spectralx`, else `~/.cache/spectralx`.
    static func cacheDirectory(_ override: String?) -> URL {
        let env = ProcessInfo.processInfo.environment
        if let p = override ?? env["SPECTRALX_CACHE"], !p.isEmpty { return URL(fileURLWithPath: p) }
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return URL(fileURLWithPath: x).appendingPathComponent("spectralx") }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/spectralx")
    }

    /// The demo store root, created on first use (into a temporary directory renamed into place, so
    /// an interrupted first start never leaves a half-written store behind).
    static func ensure(cache: URL, log: (String) -> Void) throws -> URL {
        let root = cache.appendingPathComponent("demo-store")
        let layout = ModelStoreLayout(root: root)
        let fm = FileManager.default
        if fm.fileExists(atPath: layout.domainConfigURL(domain).path) {
            try ensureTile(cache: cache)
            return root
        }
        try fm.createDirectory(at: cache, withIntermediateDirectories: true)
        let staging = cache.appendingPathComponent("demo-store.partial-\(getpid())")
        try? fm.removeItem(at: staging)
        log("creating the demo model store (13 bands, 9 classes, ~1.3 GB) in \(root.path) — once, ~10–30 s …")
        let r = try ModelStoreSynthesizer.synthesizeStore(at: staging, domainName: domain, bands: 13, classes: 9,
                                                          wavelengths: wavelengths, classNames: classNames,
                                                          description: "demo: synthetic weights, Sentinel-2 band layout",
                                                          recordFileDigests: true)
        try? fm.removeItem(at: root)
        try fm.moveItem(at: staging, to: root)
        log(String(format: "demo store ready (%.1f s)", r.seconds))
        try ensureTile(cache: cache)
        return root
    }

    static func tileURL(cache: URL) -> URL { cache.appendingPathComponent("demo-tile.tif") }

    /// A 13-band uint16 256×256 GeoTIFF (UTM 33N) with smooth synthetic reflectances.
    static func ensureTile(cache: URL) throws {
        let url = tileURL(cache: cache)
        guard !FileManager.default.fileExists(atPath: url.path) else { return }
        let w = 256, h = 256, c = 13
        var v = [UInt16](repeating: 0, count: w * h * c)
        for b in 0..<c {
            for y in 0..<h {
                for x in 0..<w {
                    let s = sin(Double(x) * 0.05 + Double(b) * 0.4) * cos(Double(y) * 0.04 - Double(b) * 0.2)
                    v[(b * h + y) * w + x] = UInt16(2000 + 1500 * s + Double(b) * 80)
                }
            }
        }
        let geo = GeoReference(pixelScale: [10, 10, 0], tiepoints: [0, 0, 0, 500000, 4_600_000, 0],
                               geoKeyDirectory: [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32633])
        let raster = try Raster(width: w, height: h, bands: c, values: v, geo: geo)
        try GeoTIFFWriter.write(raster, to: url.path)
    }
}
