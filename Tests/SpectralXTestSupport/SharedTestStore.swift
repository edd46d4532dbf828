import Foundation
import SpectralXCheckpoint

/// One synthesized model store per test process, shared by every test target (the backbone is 1.2 GB
/// and takes ~10 s to write), removed when the process exits.
///
/// Domains: `syn` (C=4, K=3, file digests recorded) always; `A` (C=32, K=23) and `B` (C=13, K=9),
/// the upstream fixture weights regenerated from `../shared/fixtures/weights-manifest*.json`, when the
/// fixtures exist. All three share one backbone file (the fixture seeds give identical backbones).
public enum SharedTestStore {
    /// Fixture domains and the manifests they come from.
    public static let fixtureDomains: [(name: String, manifest: String)] = [("A", "weights-manifest.json"), ("B", "weights-manifest-B.json")]

    /// The store directory, created on first use.
    public static var root: URL { contents.root }

    /// What regenerating the fixture domains reported (sha256 checks); empty without fixtures.
    public static var fixtureSyntheses: [SynthesisResult] { contents.syntheses }

    private struct Contents: Sendable {
        let root: URL
        let syntheses: [SynthesisResult]
    }

    private static let contents: Contents = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-tests-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        atexit {
            try? FileManager.default.removeItem(at: FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-tests-\(getpid())"))
        }
        var results: [SynthesisResult] = []
        if let fixtures = fixturesDirectory {
            for (name, manifest) in fixtureDomains {
                results.append(try! ModelStoreSynthesizer.synthesizeFromManifest(
                    fixtures.appendingPathComponent(manifest), at: dir, domainName: name))
            }
        }
        _ = try! ModelStoreSynthesizer.synthesizeStore(at: dir, domainName: "syn", bands: 4, classes: 3, recordFileDigests: true)
        return Contents(root: dir, syntheses: results)
    }()

    /// The DINOv3 fixture domain `D` (`fixtures/dinov3/weights-manifest-D.json`: its own backbone
    /// file `dinov3-synthetic` with the 25 constants, plus the adapter), synthesised into the shared
    /// store on first use only — ViT-L-only test processes never pay for its 1.2 GB backbone.
    /// nil without the fixtures.
    public static var dinov3Synthesis: SynthesisResult? { dinov3Contents }

    /// `fixtures/dinov3`, when present.
    public static var dinov3FixturesDirectory: URL? {
        guard let f = fixturesDirectory?.appendingPathComponent("dinov3"),
              FileManager.default.fileExists(atPath: f.appendingPathComponent("weights-manifest-D.json").path) else { return nil }
        return f
    }

    private static let dinov3Contents: SynthesisResult? = {
        guard let d = dinov3FixturesDirectory else { return nil }
        return try! ModelStoreSynthesizer.synthesizeFromManifest(d.appendingPathComponent("weights-manifest-D.json"),
                                                                 at: root, domainName: "D")
    }()

    /// `$SPECTRALX_SHARED/fixtures` or `../shared/fixtures` found upwards from this file, if present.
    public static let fixturesDirectory: URL? = {
        let fm = FileManager.default
        if let s = ProcessInfo.processInfo.environment["SPECTRALX_SHARED"] {
            let u = URL(fileURLWithPath: s).appendingPathComponent("fixtures")
            if fm.fileExists(atPath: u.appendingPathComponent("weights-manifest.json").path) { return u }
        }
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        for _ in 0..<6 {
            let u = dir.appendingPathComponent("shared/fixtures")
            if fm.fileExists(atPath: u.appendingPathComponent("weights-manifest.json").path) { return u }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }()

    /// Why fixture-based tests skip on this checkout.
    public static let skipReason = "../shared/fixtures not found (set SPECTRALX_SHARED): upstream reference data unavailable on this checkout"

    /// A fresh store directory whose backbone is a hard link to the shared one (no copy) and whose
    /// domains are the given copies, for tests that break domain files.
    public static func scratchStore(domains: [String]) throws -> URL {
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("spectralx-test-scratch-\(UUID().uuidString)")
        let layout = ModelStoreLayout(root: root), mine = ModelStoreLayout(root: dir)
        try fm.createDirectory(at: mine.backbonesDirectory, withIntermediateDirectories: true)
        for b in layout.backboneNames() { try fm.linkItem(at: layout.backboneURL(b), to: mine.backboneURL(b)) }
        for d in domains {
            try fm.createDirectory(at: mine.domainDirectory(d), withIntermediateDirectories: true)
            try fm.linkItem(at: layout.adapterURL(d), to: mine.adapterURL(d))
            try fm.copyItem(at: layout.domainConfigURL(d), to: mine.domainConfigURL(d))
        }
        return dir
    }
}
