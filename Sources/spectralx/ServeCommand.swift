import ArgumentParser
import Foundation
import Logging
import SpectralXAPI
import SpectralXEngine
import SpectralXFetch
import SpectralXHTTP
import SpectralXSupport
import SpectralXTensor
#if canImport(Glibc)
import Glibc
#endif

/// `spectralx serve`: the HTTP inference service over a model store (default: the demo store).
/// Every option also reads `SPECTRALX_<NAME>` (upper case, '-' → '_') when not given on the
/// command line, so a container is configured through its environment.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the HTTP inference server.",
        discussion: "Each option falls back to the environment variable SPECTRALX_<OPTION> (e.g. SPECTRALX_PORT, SPECTRALX_MAX_BATCH).")

    @Option(help: "Address to bind (SPECTRALX_HOST; default 127.0.0.1, use 0.0.0.0 in containers).") var host: String?
    @Option(help: "TCP port (SPECTRALX_PORT; default 8080, 0 picks a free one).") var port: Int?
    @OptionGroup var storeOptions: StoreOptions
    // Defaults are the libraries' (SchedulerConfiguration, HTTPServerConfiguration): one place each.
    @Option(help: "Largest batch per forward pass (SPECTRALX_MAX_BATCH; default \(Self.scheduling.maxBatchSize)).") var maxBatch: Int?
    @Option(help: "Milliseconds the oldest queued image waits for companions (SPECTRALX_QUEUE_DELAY_MS; default \(Self.ms(Self.scheduling.maxQueueDelay))).") var queueDelayMs: Int?
    @Option(help: "Queued images beyond which requests get 503 (SPECTRALX_QUEUE_LENGTH; default \(Self.scheduling.maxQueueLength)).") var queueLength: Int?
    @Option(help: "Seconds a request may stay queued before 503 (SPECTRALX_REQUEST_TIMEOUT; default \(Self.s(Self.scheduling.defaultTimeout))).") var requestTimeout: Double?
    @Option(help: "Seconds to receive request headers (SPECTRALX_HEADER_TIMEOUT; default \(Self.s(Self.http.headerReadTimeout))).") var headerTimeout: Double?
    @Option(help: "Seconds to receive a request body (SPECTRALX_BODY_TIMEOUT; default \(Self.s(Self.http.bodyReadTimeout))).") var bodyTimeout: Double?
    @Option(help: "Seconds an idle keep-alive connection is kept (SPECTRALX_IDLE_TIMEOUT; default \(Self.s(Self.http.keepAliveIdleTimeout))).") var idleTimeout: Double?
    @Option(help: "Largest request body in bytes, suffixes k/m/g, except job uploads (--max-job-body) (SPECTRALX_MAX_BODY; default 256m).") var maxBody: String?
    @Option(help: "Concurrent connections (SPECTRALX_MAX_CONNECTIONS; default 256; probes are still served beyond it).") var maxConnections: Int?
    @Option(help: "Slowest upload accepted, bytes/s averaged over 20 s, 0 = off (SPECTRALX_MIN_BODY_RATE; default 4096).") var minBodyRate: Int?
    @Option(help: "Seconds in-flight requests get after SIGTERM before the process exits (SPECTRALX_DRAIN_TIMEOUT; default 30).") var drainTimeout: Double?
    @Option(help: "Directory for spooled uploads, owned by this user (SPECTRALX_SPOOL_DIR; default <tmp>/spectralx-spool-<uid>).") var spoolDir: String?
    @Option(help: "Bearer token for PUT/DELETE /v1/domains/{name} (SPECTRALX_ADMIN_TOKEN).") var adminToken: String?
    @Option(help: "Comma-separated API keys for inference routes (SPECTRALX_API_KEYS).") var apiKeys: String?
    @Option(help: "URL prefixes or hosts jobs by reference may fetch, e.g. https://data.example.com/cogs/ or s3://bucket/prefix/; repeatable or comma-separated (SPECTRALX_FETCH_ALLOW; default: none, fetching off). Internal addresses need their own entry.")
    var fetchAllow: [String] = []
    @Option(help: "PEM certificate chain for TLS (SPECTRALX_TLS_CERT).") var tlsCert: String?
    @Option(help: "PEM private key for TLS (SPECTRALX_TLS_KEY).") var tlsKey: String?
    @Option(help: "trace, debug, info, notice, warning, error, critical (SPECTRALX_LOG_LEVEL; default info).") var logLevel: Logger.Level?
    @Option(help: "OpenBLAS threads (SPECTRALX_THREADS; default: all cores).") var threads: Int?
    @Option(help: ArgumentHelp("Precision of requests and jobs without ?precision= (SPECTRALX_PRECISION; default fp32). "
                               + "Its packed weights are made at start; the other precision's on its first request. "
                               + PrecisionOption.help.abstract, valueName: "fp32|bf16")) var precision: Precision?
    @Flag(inversion: .prefixedNo, help: "Batch queued images of different domains on the same backbone together (SPECTRALX_MIX_DOMAINS; default on).")
    var mixDomains: Bool?
    @OptionGroup(title: "Jobs") var jobOptions: ServeJobOptions

    static let scheduling = SchedulerConfiguration()
    static let http = HTTPServerConfiguration()
    static func s(_ d: Duration) -> String { String(format: "%g", d.inSeconds) }
    static func ms(_ d: Duration) -> Int { Int((d.inSeconds * 1000).rounded()) }

    func run() throws {
        try reportingFailures {
            let env = Env()
            let level = try logLevel ?? env["LOG_LEVEL"].map { v in
                guard let l = Logger.Level(rawValue: v.lowercased()) else { throw CLIError("SPECTRALX_LOG_LEVEL=\(v) is not a log level") }
                return l
            } ?? .info
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
            if let m = storeOptions.models ?? env["MODELS"] {
                root = URL(fileURLWithPath: m)
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: m, isDirectory: &isDir), isDir.boolValue else {
                    throw CLIError("--models \(m): no such directory (a model store has backbones/ and domains/)")
                }
            } else {
                root = try DemoStore.ensure(cache: DemoStore.cacheDirectory(storeOptions.cache ?? env["CACHE"])) { say($0) }
                demo = true
            }
            let defaultPrecision = try precision ?? env["PRECISION"].map { v in
                guard let p = Precision(name: v) else { throw CLIError("SPECTRALX_PRECISION=\(v): expected fp32 or bf16") }
                return p
            } ?? .fp32
            try PrecisionOption.check(defaultPrecision)
            Precision.packedAtLoad = [defaultPrecision]
            let store = ModelStore(root: root, logger: Logger(label: "spectralx.store"))
            var scheduling = Self.scheduling
            if let v = try maxBatch ?? env.int("MAX_BATCH") { scheduling.maxBatchSize = v }
            if let v = try queueDelayMs ?? env.int("QUEUE_DELAY_MS") { scheduling.maxQueueDelay = .milliseconds(v) }
            if let v = try queueLength ?? env.int("QUEUE_LENGTH") { scheduling.maxQueueLength = v }
            if let v = try requestTimeout ?? env.double("REQUEST_TIMEOUT") { scheduling.defaultTimeout = .milliseconds(Int64(v * 1000)) }
            if let v = try mixDomains ?? env.bool("MIX_DOMAINS") { scheduling.mixModels = v }
            let engine = InferenceEngine(store: store, scheduler: scheduling)
            let results = store.loadAll()
            for (name, error) in results {
                if let error { logger.error("domain not loaded", metadata: ["domain": "\(name)", "error": "\(error)"]) }
            }
            if results.isEmpty { logger.warning("the model store has no domains", metadata: ["models": "\(root.path)"]) }

            let bodyLimit = try (maxBody ?? env["MAX_BODY"]).map(ByteSize.parse) ?? APIConfiguration.defaultMaxBodyBytes
            let admin = adminToken ?? env["ADMIN_TOKEN"]
            let keys = (apiKeys ?? env["API_KEYS"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            var api = APIConfiguration(adminToken: admin, apiKeys: keys, defaultPrecision: defaultPrecision)
            do { api.fetchPolicy = try FetchPolicy(allow: fetchAllow.isEmpty ? (env["FETCH_ALLOW"].map { [$0] } ?? []) : fetchAllow) } catch {
                throw CLIError("--fetch-allow: \(error)")
            }
            if api.adminToken == nil {
                if api.apiKeys.isEmpty {
                    logger.warning("no credentials configured (local demo mode): PUT/DELETE /v1/domains/{name} are open to every client")
                } else {
                    logger.notice("API keys without an admin token: PUT/DELETE /v1/domains/{name} answer 403 (set --admin-token to enable them)")
                }
            }

            var http = HTTPServerConfiguration(host: host ?? env["HOST"] ?? "127.0.0.1", port: try port ?? env.int("PORT") ?? 8080)
            http.limits.maxBodySize = bodyLimit
            http.limits.maxBodySizeName = "--max-body"
            http.limits.routeBodyLimits = [try jobOptions.jobBodyLimit()]
            if let v = try maxConnections ?? env.int("MAX_CONNECTIONS") { http.maxConnections = v }
            if let v = try headerTimeout ?? env.double("HEADER_TIMEOUT") { http.headerReadTimeout = .milliseconds(Int64(v * 1000)) }
            if let v = try bodyTimeout ?? env.double("BODY_TIMEOUT") { http.bodyReadTimeout = .milliseconds(Int64(v * 1000)) }
            if let v = try idleTimeout ?? env.double("IDLE_TIMEOUT") { http.keepAliveIdleTimeout = .milliseconds(Int64(v * 1000)) }
            if let v = try minBodyRate ?? env.int("MIN_BODY_RATE") { http.minBodyRate = Int64(v) }
            if let v = try drainTimeout ?? env.double("DRAIN_TIMEOUT") { http.drainTimeout = .milliseconds(Int64(v * 1000)) }
            if let dir = spoolDir ?? env["SPOOL_DIR"] { http.spoolDirectory = URL(fileURLWithPath: dir, isDirectory: true) }
            guard http.maxConnections >= 1, http.minBodyRate >= 0, http.drainTimeout >= .zero else {
                throw CLIError("--max-connections must be >= 1, --min-body-rate and --drain-timeout >= 0")
            }
            http.installSignalHandlers = true
            let cert = tlsCert ?? env["TLS_CERT"], key = tlsKey ?? env["TLS_KEY"]
            if cert != nil || key != nil {
                guard let cert, let key else { throw CLIError("--tls-cert and --tls-key go together") }
                http.tls = HTTPTLSConfiguration(certificateChainPath: cert, privateKeyPath: key)
            }
            let jobConfig = try jobOptions.configuration(cache: DemoStore.cacheDirectory(storeOptions.cache ?? env["CACHE"]))
            let opener = api.sceneOpener
            let jobs = try jobOptions.service(engine: engine, executor: PipelineSceneJobExecutor(engine: engine, limits: api.rasterLimits,
                                                                                                 opener: opener),
                                              configuration: jobConfig)
            let server = try HTTPServer(configuration: http, handler: SpectralXService(engine: engine, configuration: api, jobs: jobs, opener: opener),
                                        logger: Logger(label: "spectralx.http"))
            try server.start()
            let scheme = http.tls == nil ? "http" : "https"
            let shownHost = http.host == "0.0.0.0" || http.host == "::" ? "127.0.0.1" : http.host
            let url = "\(scheme)://\(shownHost):\(server.port)"
            if let note = BLASRuntime.selection.note { say("blas: \(note)") }
            say("spectralx serving \(store.domains.map(\.name).joined(separator: ", ")) from \(root.path) at \(url)")
            if demo, let d = store.domains.first {
                let tile = DemoStore.tileURL(cache: DemoStore.cacheDirectory(storeOptions.cache ?? env["CACHE"])).path
                say("try:\n  curl -s \(url)/v1/domains/\(d.name)\n  curl -sf -H 'Content-Type: image/tiff' --data-binary @\(tile) '\(url)/v1/domains/\(d.name)/segment?output=json'")
            }
            // Jobs are asked to stop when the drain starts: a running job finishes its batch and
            // records its progress within the drain.
            server.onShutdown { jobs.beginShutdown() }
            server.waitUntilStopped()
            let jobsStopped = jobs.shutdown(until: server.drainDeadline.map { Self.date($0) })
            engine.scheduler.shutdown()
            let inFlight = engine.scheduler.inFlight
            if !jobsStopped || inFlight > 0 {
                // The drain deadline passed with a batch still running. Returning would run the exit-time
                // teardown (OpenBLAS's destructor frees its buffers, the engine unmaps its weights) under
                // that GEMM — a SIGSEGV — and wait for it; the deadline means exit now. Job progress is
                // durable up to the last tile row (as after kill -9); logs are unbuffered, stdout is flushed.
                logger.warning("drain deadline passed with work in flight; exiting without waiting for it", metadata: [
                    "images_in_flight": "\(inFlight)", "jobs_stopped": "\(jobsStopped)",
                ])
                fflush(nil)  // every stdio stream
                _exit(0)
            }
            logger.info("stopped")
        }
    }
}

extension ServeCommand {
    /// A wall-clock date for a monotonic instant (for NSCondition waits).
    static func date(_ instant: ContinuousClock.Instant) -> Date {
        let left = ContinuousClock.now.duration(to: instant)
        return Date(timeIntervalSinceNow: left.inSeconds)
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
        let (bytes, overflow) = n.multipliedReportingOverflow(by: mult)
        guard !overflow else { throw CLIError("'\(s)' is too large a size") }
        return bytes
    }
}

/// A line on stdout, written at once (not block-buffered when stdout is a pipe).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
