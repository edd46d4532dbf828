import Metrics
import Prometheus

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

    /// Prometheus text exposition format.
    public static func render() -> [UInt8] { registry.emitToBuffer() }
}
