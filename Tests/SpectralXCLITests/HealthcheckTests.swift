import Foundation
import SpectralXHTTP
import SpectralXTestSupport
import Testing

/// `spectralx healthcheck` against a bare HTTP server (no model needed): exit 0 only on a 200, the
/// port and TLS taken from the same SPECTRALX_* variables as `serve`.
@Suite("spectralx healthcheck", .serialized)
struct HealthcheckTests {
    static let openssl = ["/usr/bin/openssl", "/usr/local/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A server answering `status` on /healthz (404 elsewhere), for the duration of `body`.
    func withHealthServer(status: HTTPStatus, tls: HTTPTLSConfiguration? = nil, _ body: (Int) throws -> Void) throws {
        var config = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        config.tls = tls
        let server = try HTTPServer(configuration: config) { request, _ in
            HTTPResponse(status: request.path == "/healthz" ? status : .notFound, contentType: "application/json", body: Data("{}".utf8))
        }
        try server.start()
        defer { server.shutdown(); server.waitUntilStopped() }
        try body(server.port)
    }

    /// Runs the CLI with the given SPECTRALX_* variables and no others (the test process's own stay untouched).
    func healthcheck(_ args: [String], env: [String: String]) throws -> CLI.Result {
        guard let exe = BuiltExecutable.spectralx else {
            Issue.record(Comment(rawValue: BuiltExecutable.missingMessage))
            return CLI.Result(status: -1, stdout: "", stderr: "")
        }
        let p = Process()
        p.executableURL = exe
        p.arguments = ["healthcheck"] + args
        p.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SPECTRALX_") }.merging(env) { $1 }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return CLI.Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    @Test func exitsZeroOnlyWhenHealthzAnswers200() throws {
        try withHealthServer(status: .ok) { port in
            let r = try healthcheck([], env: ["SPECTRALX_PORT": String(port), "SPECTRALX_HOST": "0.0.0.0"])
            #expect(r.status == 0, "\(r.stderr)")
            let other = try healthcheck(["--path", "/elsewhere"], env: ["SPECTRALX_PORT": String(port)])
            #expect(other.status == 1 && other.stderr.contains("404"))
        }
        try withHealthServer(status: .serviceUnavailable) { port in
            let r = try healthcheck([], env: ["SPECTRALX_PORT": String(port)])
            #expect(r.status == 1 && r.stderr.contains("503"), "\(r.stderr)")
        }
        // Nothing listening (the port of a stopped server): a clear one-line failure.
        var closed = 0
        try withHealthServer(status: .ok) { closed = $0 }
        let r = try healthcheck(["--timeout", "1"], env: ["SPECTRALX_PORT": String(closed)])
        #expect(r.status == 1 && r.stderr.contains("cannot connect"), "\(r.stderr)")
        #expect(try healthcheck([], env: ["SPECTRALX_PORT": "http"]).status == 2)
    }

    @Test(.enabled(if: HealthcheckTests.openssl != nil, "the openssl command-line tool is not installed"))
    func followsTheServersTLSSetting() throws {
        let dir = try CLI.temporaryDirectory("healthcheck-tls")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cert = dir.appendingPathComponent("cert.pem").path, key = dir.appendingPathComponent("key.pem").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.openssl!)
        p.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                       "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "openssl req failed")
        try withHealthServer(status: .ok, tls: HTTPTLSConfiguration(certificateChainPath: cert, privateKeyPath: key)) { port in
            let tls = try healthcheck([], env: ["SPECTRALX_PORT": String(port), "SPECTRALX_TLS_CERT": cert, "SPECTRALX_TLS_KEY": key])
            #expect(tls.status == 0, "\(tls.stderr)")
            #expect(tls.stdout.contains("https://"))
            // Plain HTTP against a TLS port is not healthy.
            let plain = try healthcheck(["--no-tls", "--timeout", "2"], env: ["SPECTRALX_PORT": String(port)])
            #expect(plain.status == 1)
        }
    }
}
