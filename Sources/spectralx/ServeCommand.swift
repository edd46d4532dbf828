import ArgumentParser
import Foundation
import Logging
import SpectralXAPI
import SpectralXEngine
import SpectralXHTTP
import SpectralXTensor

/// `spectralx serve`: the HTTP inference service over a model store (default: the demo store).
/// Every option also reads `SPECTRALX_<NAME>` (upper case, '-' → '_') when not given on the
/// command line, so a container is configured through its environment.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the HTTP inference server.",
        discussion: "Each option falls back to the environment variable SPECTRALX_<OPTION> (e.g. SPECTRALX_PORT, SPECTRALX_MAX_BATCH).")

    @Option(help: "Address to bind (SPECTRALX_HOST; default 127.0.0.1, use 0.0.0.0 in containers).") var host: String?
    @Option(help: "TCP port (SPECTRALX_PORT; default 8080, 0 picks a free one).") var port: Int?
    @Option(help: "Model store directory (SPECTRALX_MODELS; default: the demo store in the cache directory).") var models: String?
    @Option(help: "Cache directory for the demo store (SPECTRALX_CACHE; default ~/.cache/spectralx).") var cache: String?
    @Option(help: "Largest batch per forward pass (SPECTRALX_MAX_BATCH; default 4).") var maxBatch: Int?
    @Option(help: "Milliseconds the oldest queued image waits for companions (SPECTRALX_QUEUE_DELAY_MS; default 10).") var queueDelayMs: Int?
    @Option(help: "Queued images beyond which requests get 503 (SPECTRALX_QUEUE_LENGTH; default 32).") var queueLength: Int?
    @Option(help: "Seconds a request may stay queued before 503 (SPECTRALX_REQUEST_TIMEOUT; default 120).") var requestTimeout: Double?
    @Option(help: "Seconds to receive request headers (SPECTRALX_HEADER_TIMEOUT; default 10).") var headerTimeout: Double?
    @Option(help: "Seconds to receive a request body (SPECTRALX_BODY_TIMEOUT; default 60).") var bodyTimeout: Double?
    @Option(help: "Seconds an idle keep-alive connection is kept (SPECTRALX_IDLE_TIMEOUT; default 15).") var idleTimeout: Double?
    @Option(help: "Largest request body in bytes, suffixes k/m/g (SPECTRALX_MAX_BODY; default 256m).") var maxBody: String?
    @Option(help: "Concurrent connections (SPECTRALX_MAX_CONNECTIONS; default 256).") var maxConnections: Int?
    @Option(help: "Bearer token for PUT/DELETE /v1/domains/{name} (SPECTRALX_ADMIN_TOKEN).") var adminToken: String?
    @Option(help: "Comma-separated API keys for inference routes (SPECTRALX_API_KEYS).") var apiKeys: String?
    @Option(help: "PEM certificate chain for TLS (SPECTRALX_TLS_CERT).") var tlsCert: String?
    @Option(help: "PEM private key for TLS (SPECTRALX_TLS_KEY).") var tlsKey: String?
    @Option(help: "trace, debug, info, notice, warning, error, critical (SPECTRALX_LOG_LEVEL; default info).") var logLevel: String?
    @Option(help: "OpenBLAS threads (SPECTRALX_THREADS; default: all cores).") var threads: Int?
    @Flag(inversion: .prefixedNo, help: "Batch queued images of different domains on the same backbone together (SPECTRALX_MIX_DOMAINS; default on).")
    var mixDomains: Bool?

    func run() throws {
        try reportingFailures {
            let env = Env()
            let level = Logger.Level(rawValue: (logLevel ?? env["LOG_LEVEL"] ?? "info").lowercased()) ?? .info
            LoggingSystem.bootstrap { label in
                var h = StreamLogHandler.standardError(label: label)
                h.logLevel = level
                return h
            }
            ServiceMetrics.bootstrap()
            let logger = Logger(label: "spectralx.serve")
            if let t = try threads ?? env.int("THREADS") { GEMM.threads = t }

            let root: URL
            var demo = false
            if let m = models ?? env["MODELS"] {
                root = URL(fileURLWithPath: m)
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: m, isDirectory: &isDir), isDir.boolValue else {
                    throw CLIError("--models \(m): no such directory (a model store has backbones/ and domains/)")
                }
            } else {
                root = try DemoStore.ensure(cache: DemoStore.cacheDirectory(cache)) { say($0) }
                demo = true
            }
            let store = ModelStore(root: root, logger: Logger(label: "spectralx.store"))
            let scheduling = SchedulerConfiguration(
                maxBatchSize: try maxBatch ?? env.int("MAX_BATCH") ?? 4,
                maxQueueDelay: .milliseconds(try queueDelayMs ?? env.int("QUEUE_DELAY_MS") ?? 10),
                maxQueueLength: try queueLength ?? env.int("QUEUE_LENGTH") ?? 32,
                defaultTimeout: .milliseconds(Int64((try requestTimeout ?? env.double("REQUEST_TIMEOUT") ?? 120) * 1000)),
                mixModels: try mixDomains ?? env.bool("MIX_DOMAINS") ?? true)
            let engine = InferenceEngine(store: store, scheduler: scheduling)
            let results = store.loadAll()
            for (name, error) in results {
                if let error { logger.error("domain not loaded", metadata: ["domain": "\(name)", "error": "\(error)"]) }
            }
            if results.isEmpty { logger.warning("the model store has no domains", metadata: ["models": "\(root.path)"]) }

            let bodyLimit = try ByteSize.parse(maxBody ?? env["MAX_BODY"] ?? "256m")
            let admin = adminToken ?? env["ADMIN_TOKEN"]
            let keys = (apiKeys ?? env["API_KEYS"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let api = APIConfiguration(adminToken: admin, apiKeys: keys, maxBodyBytes: bodyLimit)
            if api.adminToken == nil { logger.warning("no admin token: PUT/DELETE /v1/domains/{name} are open to every client") }

            var http = HTTPServerConfiguration(host: host ?? env["HOST"] ?? "127.0.0.1", port: try port ?? env.int("PORT") ?? 8080)
            http.limits.maxBodySize = bodyLimit
            http.maxConnections = try maxConnections ?? env.int("MAX_CONNECTIONS") ?? 256
            http.headerReadTimeout = .milliseconds(Int64((try headerTimeout ?? env.double("HEADER_TIMEOUT") ?? 10) * 1000))
            http.bodyReadTimeout = .milliseconds(Int64((try bodyTimeout ?? env.double("BODY_TIMEOUT") ?? 60) * 1000))
            http.keepAliveIdleTimeout = .milliseconds(Int64((try idleTimeout ?? env.double("IDLE_TIMEOUT") ?? 15) * 1000))
            http.installSignalHandlers = true
            let cert = tlsCert ?? env["TLS_CERT"], key = tlsKey ?? env["TLS_KEY"]
            if cert != nil || key != nil {
                guard let cert, let key else { throw CLIError("--tls-cert and --tls-key go together") }
                http.tls = HTTPTLSConfiguration(certificateChainPath: cert, privateKeyPath: key)
            }
            let server = try HTTPServer(configuration: http, handler: SpectralXService(engine: engine, configuration: api),
                                        logger: Logger(label: "spectralx.http"))
            try server.start()
            let scheme = http.tls == nil ? "http" : "https"
            let shownHost = http.host == "0.0.0.0" || http.host == "::" ? "127.0.0.1" : http.host
            let url = "\(scheme)://\(shownHost):\(server.port)"
            say("spectralx serving \(store.domains.map(\.name).joined(separator: ", ")) from \(root.path) at \(url)")
            if demo, let d = store.domains.first {
                let tile = DemoStore.tileURL(cache: DemoStore.cacheDirectory(cache)).path
                say("try:\n  curl -s \(url)/v1/domains/\(d.name)\n  curl -sf -H 'Content-Type: image/tiff' --data-binary @\(tile) '\(url)/v1/domains/\(d.name)/segment?output=json'")
            }
            server.waitUntilStopped()
            engine.scheduler.shutdown()
            logger.info("stopped")
        }
    }
}

/// `SPECTRALX_*` environment lookups with typed parsing (a malformed value is an error, not ignored).
struct Env {
    let values = ProcessInfo.processInfo.environment
    subscript(_ name: String) -> String? {
        guard let v = values["SPECTRALX_" + name], !v.isEmpty else { return nil }
        return v
    }
    func int(_ name: String) throws -> Int? {
        guard let v = self[name] else { return nil }
        guard let n = Int(v) else { throw CLIError("SPECTRALX_\(name)=\(v) is not an integer") }
        return n
    }
    func bool(_ name: String) throws -> Bool? {
        guard let v = self[name] else { return nil }
        switch v.lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw CLIError("SPECTRALX_\(name)=\(v) is not a boolean (true/false)")
        }
    }
    func double(_ name: String) throws -> Double? {
        guard let v = self[name] else { return nil }
        guard let n = Double(v) else { throw CLIError("SPECTRALX_\(name)=\(v) is not a number") }
        return n
    }
}

/// Sizes like `512k`, `256m`, `1g` or plain bytes.
enum ByteSize {
    static func parse(_ s: String) throws -> Int64 {
        let t = s.trimmingCharacters(in: .whitespaces).lowercased()
        let mult: Int64
        var digits = Substring(t)
        switch t.last {
        case "k": mult = 1 << 10; digits = digits.dropLast()
        case "m": mult = 1 << 20; digits = digits.dropLast()
        case "g": mult = 1 << 30; digits = digits.dropLast()
        default: mult = 1
        }
        guard let n = Int64(digits), n > 0 else { throw CLIError("'\(s)' is not a size (e.g. 256m)") }
        return n * mult
    }
}

/// A line on stdout, written at once (not block-buffered when stdout is a pipe).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
