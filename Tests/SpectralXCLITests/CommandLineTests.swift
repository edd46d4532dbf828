import Foundation
import SpectralXCheckpoint
import SpectralXRaster
import SpectralXTestSupport
import Testing

/// Runs the built `spectralx` executable (`swift build` first; `scripts/test.sh` does).
enum CLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// `environment`: variables set (or, with a nil value, removed) on top of this process's environment.
    static func run(_ args: [String], environment: [String: String?] = [:]) throws -> Result {
        guard let exe = BuiltExecutable.spectralx else {
            Issue.record(Comment(rawValue: BuiltExecutable.missingMessage))
            return Result(status: -1, stdout: "", stderr: "")
        }
        let p = Process()
        p.executableURL = exe
        p.arguments = args
        if !environment.isEmpty {
            var env = ProcessInfo.processInfo.environment
            for (key, value) in environment { env[key] = value }
            p.environment = env
        }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func temporaryDirectory(_ name: String) throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-cli-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: u)
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }
}

@Suite("Command line: bad input is refused clearly", .serialized)
struct CommandLineErrorTests {
    @Test("garbage and truncated safetensors files: one clear line, exit 1")
    func badSafetensors() throws {
        let dir = try CLI.temporaryDirectory("bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let garbage = dir.appendingPathComponent("garbage.safetensors")
        try Data("not a safetensors file at all".utf8).write(to: garbage)
        var r = try CLI.run(["inspect", garbage.path])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("spectralx: ") && r.stderr.contains("header"), "stderr: \(r.stderr)")

        // A valid file cut short: the header promises bytes that are not there.
        let header = #"{"w":{"dtype":"F32","shape":[4,4],"data_offsets":[0,64]}}"#
        var bytes = Data()
        var n = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &n) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: header.utf8)
        bytes.append(Data(count: 20))
        let truncated = dir.appendingPathComponent("truncated.safetensors")
        try bytes.write(to: truncated)
        r = try CLI.run(["inspect", truncated.path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("'w'"), "stderr names the tensor: \(r.stderr)")
        #expect(!r.stderr.contains("Fatal error"))
    }

    @Test("usage errors exit 2")
    func usage() throws {
        let r = try CLI.run(["synth", "--bands", "0"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--bands"))
    }

    @Test("a domain whose weights disagree with domain.json, a truncated adapter, a wrong input: refused, nothing written")
    func domainErrors() throws {
        let store = try CLI.temporaryDirectory("store")
        defer { try? FileManager.default.removeItem(at: store) }
        var r = try CLI.run(["synth", "-o", store.path, "--domain", "s2", "--bands", "13", "--classes", "9"])
        try #require(r.status == 0, "synth failed: \(r.stderr)")
        let layout = ModelStoreLayout(root: store)

        // Wrong band count: domain.json says 32, the adapter carries 13-band weights.
        var config = try layout.loadDomainConfig("s2")
        config.name = "liar"
        config.bands = 32
        config.wavelengths = DomainConfig.defaultWavelengths(32)
        try FileManager.default.createDirectory(at: layout.domainDirectory("liar"), withIntermediateDirectories: true)
        try config.write(to: layout.domainConfigURL("liar"))
        try FileManager.default.linkItem(at: layout.adapterURL("s2"), to: layout.adapterURL("liar"))
        r = try CLI.run(["inspect", layout.domainDirectory("liar").path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("band count mismatch") && r.stderr.contains("32") && r.stderr.contains("13"), "stderr: \(r.stderr)")

        // Truncated adapter file.
        try FileManager.default.createDirectory(at: layout.domainDirectory("cut"), withIntermediateDirectories: true)
        var cut = try layout.loadDomainConfig("s2")
        cut.name = "cut"
        try cut.write(to: layout.domainConfigURL("cut"))
        let full = try Data(contentsOf: layout.adapterURL("s2"), options: .alwaysMapped)
        try full.prefix(full.count / 2).write(to: layout.adapterURL("cut"))
        let input = store.appendingPathComponent("x.npy")
        try NpyWriter.write([Float](repeating: 0.5, count: 13 * 224 * 224), shape: [1, 13, 224, 224], to: input.path)
        let out = store.appendingPathComponent("y.npy")
        r = try CLI.run(["forward", "--models", store.path, "--domain", "cut", input.path, "-o", out.path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("past the"), "stderr: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path))

        // Input with the wrong band count for a good domain.
        let wrong = store.appendingPathComponent("w.npy")
        try NpyWriter.write([Float](repeating: 0.5, count: 4 * 224 * 224), shape: [4, 224, 224], to: wrong.path)
        r = try CLI.run(["forward", "--models", store.path, "--domain", "s2", wrong.path, "-o", out.path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("does not match (B, 13, 224, 224)"), "stderr: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path))

        // And the good domain works end to end: (1,13,224,224) → (1,9,224,224) finite logits.
        r = try CLI.run(["forward", "--models", store.path, "--domain", "s2", input.path, "-o", out.path])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let logits = try NpyArray.read(path: out.path)
        #expect(logits.shape == [1, 9, 224, 224])
        #expect(logits.toFloat32().allSatisfy { $0.isFinite })
    }
}
