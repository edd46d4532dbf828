import Foundation
import SpectralXCheckpoint

/// One synthesized model store per test process (the backbone is 1.2 GB and takes ~10 s to write),
/// shared by every suite of every test target through a per-process directory and a lock file, and
/// removed when the process exits. Domain `syn` (C=4, K=3, file digests recorded) always exists;
/// `domain-A` (the fixture weights) when ../shared/fixtures exists.
enum SharedTestStore {
    static let root: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-svc-tests-\(getpid())")
        let lockPath = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-svc-tests-\(getpid()).lock").path
        let fd = open(lockPath, O_CREAT | O_RDWR, 0o600)
        flock(fd, LOCK_EX)
        defer { flock(fd, LOCK_UN); close(fd) }
        let ready = dir.appendingPathComponent(".ready")
        if !FileManager.default.fileExists(atPath: ready.path) {
            try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            _ = try! ModelStoreSynthesizer.synthesizeStore(at: dir, domainName: "syn", bands: 4, classes: 3,
                                                          recordFileDigests: true)
            if let fixtures = fixturesDirectory {
                _ = try! ModelStoreSynthesizer.synthesizeFromManifest(fixtures.appendingPathComponent("weights-manifest.json"),
                                                                     at: dir, domainName: "domain-A")
            }
            _ = FileManager.default.createFile(atPath: ready.path, contents: Data())
            atexit {
                let d = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-svc-tests-\(getpid())")
                try? FileManager.default.removeItem(at: d)
                try? FileManager.default.removeItem(atPath: d.path + ".lock")
            }
        }
        return dir
    }()

    /// `$SPECTRALX_SHARED/fixtures` or `../shared/fixtures` found upwards from this file, if present.
    static let fixturesDirectory: URL? = {
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

    /// A fresh store directory whose backbone is a hard link to the shared one (no copy) and whose
    /// domains are the given copies, for tests that break domain files.
    static func scratchStore(domains: [String]) throws -> URL {
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("spectralx-svc-scratch-\(UUID().uuidString)")
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
