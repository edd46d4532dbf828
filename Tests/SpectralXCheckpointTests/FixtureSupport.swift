import Foundation
import SpectralXCheckpoint

/// Locates the read-only reference material (`/work/shared`): env SPECTRALX_SHARED, else
/// `../shared` relative to the package root derived from this file's path.
enum Fixtures {
    static let sharedDirectory: URL? = {
        let fm = FileManager.default
        if let env = ProcessInfo.processInfo.environment["SPECTRALX_SHARED"], !env.isEmpty {
            let u = URL(fileURLWithPath: env)
            if fm.fileExists(atPath: u.appendingPathComponent("fixtures").path) { return u }
        }
        let packageRoot = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // SpectralXCheckpointTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()  // package root
        for candidate in [packageRoot.deletingLastPathComponent().appendingPathComponent("shared"),
                          packageRoot.resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("shared"),
                          URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
                              .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                              .deletingLastPathComponent().appendingPathComponent("shared")]
        where fm.fileExists(atPath: candidate.appendingPathComponent("fixtures/weights-manifest.json").path) {
            return candidate
        }
        return nil
    }()

    static var available: Bool {
        if sharedDirectory == nil {
            print("SKIP: reference fixtures not found (set SPECTRALX_SHARED or place them at ../shared); "
                + "manifest-based tests are skipped")
        }
        return sharedDirectory != nil
    }

    static let skipReason: Comment = "needs /work/shared/fixtures (set SPECTRALX_SHARED)"

    static func manifestURL(_ name: String) -> URL? {
        sharedDirectory?.appendingPathComponent("fixtures").appendingPathComponent(name)
    }

    static let manifestA: WeightManifest? = manifestURL("weights-manifest.json").flatMap { try? WeightManifest(contentsOf: $0) }
    static let manifestB: WeightManifest? = manifestURL("weights-manifest-B.json").flatMap { try? WeightManifest(contentsOf: $0) }

    /// A fresh temporary directory, removed by the caller.
    static func temporaryDirectory(_ tag: String) -> URL {
        let u = FileManager.default.temporaryDirectory
            .appendingPathComponent("spectralx-ckpt-\(tag)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }
}

import Testing
