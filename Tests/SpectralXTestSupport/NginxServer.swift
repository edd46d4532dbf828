import Foundation
import SpectralXFetch

/// nginx on a free loopback port serving one file's directory (Range, ETag and If-Match built in),
/// started in the foreground under a shell that stops it when this process's pipe closes.
public final class NginxServer: Sendable {
    public let port: Int
    private let keepAlive: FileHandle

    private init(port: Int, keepAlive: FileHandle) { self.port = port; self.keepAlive = keepAlive }

    /// Closes the pipe (the shell then stops nginx: TERM, KILL a second later).
    public func stop() { try? keepAlive.close() }

    public static func start(serving file: String) -> Result<NginxServer, MotoServer.SkipReason> {
        guard let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            return .failure(.init(description: "nginx is not installed"))
        }
        guard let port = MotoServer.freePort() else { return .failure(.init(description: "no free port")) }
        let root = URL(fileURLWithPath: file).deletingLastPathComponent().path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nginx-\(port)").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let conf = """
        daemon off; master_process off; worker_processes 1; error_log \(dir)/error.log; pid \(dir)/nginx.pid;
        events { worker_connections 64; }
        http {
          access_log off; client_body_temp_path \(dir)/body; proxy_temp_path \(dir)/proxy; fastcgi_temp_path \(dir)/fcgi;
          uwsgi_temp_path \(dir)/uwsgi; scgi_temp_path \(dir)/scgi;
          server { listen 127.0.0.1:\(port); root \(root); location / { } }
        }
        """
        do { try conf.write(toFile: "\(dir)/nginx.conf", atomically: true, encoding: .utf8) } catch {
            return .failure(.init(description: "cannot write nginx.conf: \(error)"))
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "\"$0\" -c \"$1\" -p \"$2\" </dev/null & pid=$!; read _; kill $pid; sleep 1; kill -KILL $pid 2>/dev/null",
                             nginx, "\(dir)/nginx.conf", dir]
        let pipe = Pipe()
        process.standardInput = pipe
        // Not the test's own output: a pipe swift-test waits on must not be held by a server.
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return .failure(.init(description: "cannot start nginx: \(error)")) }
        let server = NginxServer(port: port, keepAlive: pipe.fileHandleForWriting)
        var probe = HTTPClient.Configuration()
        probe.maxAttempts = 1
        probe.connectTimeout = 1
        let client = HTTPClient(configuration: probe)
        for _ in 0..<100 {   // 10 s at most
            if (try? client.execute(HTTPClientRequest(method: "HEAD", url: URL(string: "http://127.0.0.1:\(port)/")!))) != nil {
                return .success(server)
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        server.stop()
        let log = (try? String(contentsOfFile: "\(dir)/error.log", encoding: .utf8)) ?? ""
        return .failure(.init(description: "nginx did not answer on 127.0.0.1:\(port): \(log.suffix(400))"))
    }
}
