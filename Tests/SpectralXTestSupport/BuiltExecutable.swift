import Foundation

/// The `spectralx` executable built next to the test bundle (`swift build -c release` before
/// `swift test -c release`, as `scripts/test.sh` does), for tests that drive the command line.
public enum BuiltExecutable {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The configuration being tested first, then the other one; nil when neither is built.
    public static var spectralx: URL? {
        #if DEBUG
        let configurations = ["debug", "release"]
        #else
        let configurations = ["release", "debug"]
        #endif
        for c in configurations {
            let u = packageRoot.appendingPathComponent(".build/\(c)/spectralx")
            if FileManager.default.isExecutableFile(atPath: u.path) { return u }
        }
        return nil
    }

    public static let missingMessage = "spectralx executable not built: run `swift build -c release` before `swift test -c release`"
}
