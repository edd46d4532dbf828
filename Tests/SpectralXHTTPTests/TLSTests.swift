import Foundation
import Testing
import SpectralXHTTP

/// Runs a command, feeding `input` on stdin; returns stdout and the exit status.
func runProcess(_ path: String, _ arguments: [String], input: Data = Data(), timeout: Double = 30) throws -> (out: Data, status: Int32) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    let stdin = Pipe(), stdout = Pipe()
    p.standardInput = stdin
    p.standardOutput = stdout
    p.standardError = FileHandle.nullDevice
    try p.run()
    stdin.fileHandleForWriting.write(input)
    try stdin.fileHandleForWriting.close()
    let out = stdout.fileHandleForReading.readDataToEndOfFile()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(10_000) }
    if p.isRunning { p.terminate() }
    p.waitUntilExit()
    return (out, p.terminationStatus)
}

let opensslPath = ["/usr/bin/openssl", "/usr/local/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }

@Suite struct TLSTests {
    @Test(.enabled(if: opensslPath != nil, "the openssl command-line tool is not installed"))
    func servesOverTLSWithASelfSignedCertificate() throws {
        let openssl = opensslPath!
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cert = dir.appendingPathComponent("cert.pem").path, key = dir.appendingPathComponent("key.pem").path
        let gen = try runProcess(openssl, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                           "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"])
        try #require(gen.status == 0, "openssl req failed")

        let config = testConfiguration { $0.tls = HTTPTLSConfiguration(certificateChainPath: cert, privateKeyPath: key) }
        try withServer(config) { server in
            let request = "GET /secure HTTP/1.1\r\nHost: x\r\nX-Request-Id: t1\r\n\r\n"
                + "POST /secure HTTP/1.1\r\nHost: x\r\nX-Request-Id: t2\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc"
            // -quiet implies -ign_eof: s_client reads until the server closes (the second request asks it to).
            let result = try runProcess(openssl, ["s_client", "-connect", "127.0.0.1:\(server.port)", "-quiet"],
                                        input: Data(request.utf8))
            let expected = echoResponse("GET /secure", id: "t1") + echoResponse("POST /secure abc", id: "t2", close: true)
            #expect(result.out.text == expected)
        }
    }

    @Test func badCertificatePathFailsAtInit() throws {
        var config = testConfiguration()
        config.tls = HTTPTLSConfiguration(certificateChainPath: "/nonexistent/cert.pem", privateKeyPath: "/nonexistent/key.pem")
        #expect(throws: (any Error).self) {
            _ = try HTTPServer(configuration: config, logger: testLogger(), handler: echoHandler)
        }
    }

    @Test(.enabled(if: opensslPath != nil, "the openssl command-line tool is not installed"))
    func plainHTTPOnTLSPortIsDropped() throws {
        let openssl = opensslPath!
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cert = dir.appendingPathComponent("cert.pem").path, key = dir.appendingPathComponent("key.pem").path
        let gen = try runProcess(openssl, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                           "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"])
        try #require(gen.status == 0)
        let config = testConfiguration { $0.tls = HTTPTLSConfiguration(certificateChainPath: cert, privateKeyPath: key) }
        try withServer(config) { server in
            let c = try RawClient(port: server.port)
            try c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(c.waitForClose())
        }
    }
}
