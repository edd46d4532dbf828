import Foundation
import SpectralXFetch
import SpectralXTestSupport
import Testing

/// The client's TLS against `openssl s_server -www` on loopback with a throw-away certificate.
@Suite struct TLSClientTests {
    static let openssl = ["/usr/bin/openssl", "/usr/local/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test(.enabled(if: openssl != nil, "the openssl command-line tool is not installed"))
    func verifiesCertificatesByAddressAndName() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cert = dir.appendingPathComponent("cert.pem").path, key = dir.appendingPathComponent("key.pem").path
        let gen = Process()
        gen.executableURL = URL(fileURLWithPath: Self.openssl!)
        gen.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                         "-out", cert, "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        gen.standardOutput = FileHandle.nullDevice
        gen.standardError = FileHandle.nullDevice
        try gen.run()
        gen.waitUntilExit()
        try #require(gen.terminationStatus == 0, "openssl req failed")

        let port = try #require(MotoServer.freePort())
        let server = Process()
        server.executableURL = URL(fileURLWithPath: Self.openssl!)
        server.arguments = ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", cert, "-key", key, "-www", "-quiet"]
        server.standardInput = Pipe()
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        // SIGKILL: s_server started from the test process does not always end on SIGTERM.
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }

        func client(ca: String?) -> HTTPClient {
            var c = HTTPClient.Configuration()
            c.caFile = ca
            c.maxAttempts = 1
            c.connectTimeout = 5
            return HTTPClient(configuration: c)
        }
        // Wait for the listener.
        let deadline = Date().addingTimeInterval(10)
        var first: HTTPClientResponse?
        while first == nil && Date() < deadline {
            first = try? client(ca: cert).execute(HTTPClientRequest(url: URL(string: "https://127.0.0.1:\(port)/")!))
            if first == nil { Thread.sleep(forTimeInterval: 0.1) }
        }
        #expect(first?.status == 200)
        let byName = try client(ca: cert).execute(HTTPClientRequest(url: URL(string: "https://localhost:\(port)/")!))
        #expect(byName.status == 200)
        // The system store does not know this certificate.
        #expect {
            try client(ca: nil).execute(HTTPClientRequest(url: URL(string: "https://127.0.0.1:\(port)/")!))
        } throws: { error in
            guard case FetchError.tls(_, let reason) = error else { return false }
            return reason.contains("verification")
        }
        var insecure = HTTPClient.Configuration()
        insecure.verifyTLS = false
        #expect(try HTTPClient(configuration: insecure).execute(HTTPClientRequest(url: URL(string: "https://127.0.0.1:\(port)/")!)).status == 200)
    }
}
