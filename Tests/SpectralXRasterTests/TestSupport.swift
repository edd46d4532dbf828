import Foundation
import SpectralXRaster

/// Locates /work/shared-style reference material: env SPECTRALX_SHARED, else `../shared`
/// relative to the package root (derived from this file's path). Nil when absent.
enum Shared {
    static let root: String? = {
        let fm = FileManager.default
        if let env = ProcessInfo.processInfo.environment["SPECTRALX_SHARED"], fm.fileExists(atPath: env) { return env }
        // Tests/SpectralXRasterTests/TestSupport.swift → package root is three levels up.
        var url = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        for _ in 0..<3 { url.deleteLastPathComponent() }
        let candidate = url.deletingLastPathComponent().appendingPathComponent("shared").path
        return fm.fileExists(atPath: candidate + "/fixtures") ? candidate : nil
    }()

    static func fixture(_ name: String) -> String? {
        guard let r = root else { return nil }
        let p = r + "/fixtures/" + name
        return FileManager.default.fileExists(atPath: p) ? p : nil
    }

    static let skipReason = "shared fixtures not found (set SPECTRALX_SHARED or place them at ../shared)"
}

/// A fresh temporary directory per call.
func makeTempDir(_ tag: String) throws -> String {
    let p = NSTemporaryDirectory() + "spectralx-raster-\(tag)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
    return p
}

/// Deterministic pseudo-random bytes (splitmix64).
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}

/// Path of the package's scripts/raster directory.
let scriptsDir: String = {
    var url = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.appendingPathComponent("scripts/raster").path
}()

/// Runs a command, returns (status, stdout+stderr).
func run(_ exe: String, _ args: [String]) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [exe] + args
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// True when python3 can import all of `modules`.
func pythonHas(_ modules: [String]) -> Bool {
    guard let (st, _) = try? run("python3", ["-c", "import " + modules.joined(separator: ", ")]) else { return false }
    return st == 0
}
