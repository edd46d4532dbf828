import Metrics
import Prometheus
import SpectralXRaster

/// The process-wide Prometheus registry behind swift-metrics. `bootstrap()` must run before the
/// engine is created (metric handles bind to the factory in force when they are made); it is
/// idempotent, so tests and the CLI can both call it.
public enum ServiceMetrics {
    public static let registry = PrometheusCollectorRegistry()

    private static let installed: Bool = {
        var factory = PrometheusMetricsFactory(registry: registry)
        let slow: [Duration] = [.milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(250),
                                .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8),
                                .seconds(16), .seconds(32), .seconds(64)]
        factory.defaultDurationHistogramBuckets = slow
        factory.valueHistogramBuckets["spectralx_batch_size"] = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32]
        MetricsSystem.bootstrap(factory)
        return true
    }()

    /// Installs the Prometheus factory (once per process).
    public static func bootstrap() { _ = installed }

    /// Requests whose client closed or reset the connection before the answer, dropped unrun or
    /// stopped between batches of windows (`spectralx_requests_abandoned_total`).
    static let requestsAbandoned = Counter(label: "spectralx_requests_abandoned_total")

    /// Prometheus text exposition format, with a `# HELP` line before each family's `# TYPE` line.
    public static func render() -> [UInt8] { withHelp(registry.emitToBuffer() + fetchCounters()) }

    /// Reads by range of scenes by reference, from the process's `FetchCounters` (kept there
    /// rather than in swift-metrics so SpectralXRaster and SpectralXRemote need no metrics backend).
    static func fetchCounters() -> [UInt8] {
        let c = FetchCounters.process
        var text = ""
        for (name, value) in [("spectralx_fetch_bytes_total", c.bytes), ("spectralx_fetch_requests_total", c.requests),
                              ("spectralx_fetch_retries_total", c.retries), ("spectralx_fetch_cache_hits_total", c.cacheHits),
                              ("spectralx_fetch_cache_misses_total", c.cacheMisses)] {
            text += "# TYPE \(name) counter\n\(name) \(value)\n"
        }
        return Array(text.utf8)
    }

    /// `# HELP` texts by family. swift-metrics handles carry no help text (and the registry refuses a
    /// family registered twice with different texts), so `render` inserts them; `promtool check
    /// metrics` lints a family without one. A test checks every family rendered has one.
    public static let help: [String: String] = [
        "spectralx_http_requests_total": "HTTP requests answered, by route, method and status.",
        "spectralx_http_request_duration_seconds": "Time from a request's head to its answer, by route.",
        "spectralx_queue_depth": "Images waiting in the batch scheduler's queue.",
        "spectralx_queue_wait_seconds": "Time an image waited in the queue before its batch started.",
        "spectralx_queue_rejections_total": "Images refused by the scheduler, by reason (queue_full, deadline).",
        "spectralx_batch_size": "Images per forward pass.",
        "spectralx_batch_seconds": "Time of one forward pass (a batch).",
        "spectralx_model_stage_seconds": "Time per model stage of a forward pass, by stage.",
        "spectralx_domains_loaded": "Domains loaded and serving.",
        "spectralx_requests_abandoned_total": "Requests whose client went away before the answer.",
        "spectralx_jobs": "Jobs stored, by status.",
        "spectralx_job_queue_length": "Accepted jobs waiting for a slot.",
        "spectralx_job_windows_total": "Model windows computed by jobs (rate() gives windows per second).",
        "spectralx_fleet_job_windows_total": "Fleet mode: model windows computed by jobs on this replica.",
        "spectralx_fleet_jobs_claimed_total": "Fleet mode: jobs this replica claimed (new or taken over).",
        "spectralx_fleet_lease_renewals_total": "Fleet mode: job lease renewals (heartbeats) by this replica.",
        "spectralx_fleet_leases_lost_total": "Fleet mode: running jobs this replica stopped because another replica holds the lease now.",
        "spectralx_fleet_takeovers_total": "Fleet mode: jobs this replica took over from a replica whose lease expired or was released.",
        "spectralx_fleet_blob_bytes_in_total": "Fleet mode: bytes this replica read from the blob store (inputs, row bands, results served).",
        "spectralx_fleet_blob_bytes_out_total": "Fleet mode: bytes this replica wrote to the blob store (inputs, row bands, results).",
        "spectralx_job_windows_per_second": "Windows per second of the running jobs over their current runs.",
        "spectralx_fetch_bytes_total": "Bytes fetched by range for scenes by reference (HTTP and S3).",
        "spectralx_fetch_requests_total": "Ranged requests for scenes by reference.",
        "spectralx_fetch_retries_total": "Retries of ranged requests (5xx, resets, short reads, timeouts).",
        "spectralx_fetch_cache_hits_total": "Byte ranges of scenes by reference served from the fetch cache.",
        "spectralx_fetch_cache_misses_total": "Byte ranges of scenes by reference fetched from the server.",
    ]

    /// Inserts `# HELP` lines (from `help`) before `# TYPE` lines that lack one.
    static func withHelp(_ text: [UInt8]) -> [UInt8] {
        guard !text.isEmpty else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.count + 64 * help.count)
        let typePrefix = Array("# TYPE ".utf8)
        var previous: ArraySlice<UInt8> = []
        for line in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if line.starts(with: typePrefix) {
                let name = String(decoding: line.dropFirst(typePrefix.count).prefix { $0 != UInt8(ascii: " ") }, as: UTF8.self)
                if let h = help[name], !previous.starts(with: Array("# HELP \(name) ".utf8)) {
                    out.append(contentsOf: Array("# HELP \(name) \(h)\n".utf8))
                }
            }
            out.append(contentsOf: line)
            out.append(UInt8(ascii: "\n"))
            previous = line
        }
        out.removeLast()  // the newline appended after the last piece (empty when the text ends with one)
        return out
    }
}
