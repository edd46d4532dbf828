import Foundation
import Logging
import SpectralXAPI
import SpectralXEngine
import SpectralXHTTP
import SpectralXTestSupport

/// A real server on a loopback port over a model store.
struct TestServer {
    let server: HTTPServer
    let engine: InferenceEngine
    var port: Int { server.port }

    init(root: URL, domains: [String], api: APIConfiguration = APIConfiguration(),
         scheduling: SchedulerConfiguration = SchedulerConfiguration(maxBatchSize: 4, maxQueueDelay: .milliseconds(20)),
         maxBody: Int64 = 64 << 20) throws {
        ServiceMetrics.bootstrap()
        engine = InferenceEngine(store: ModelStore(root: root), scheduler: scheduling)
        for d in domains { try engine.store.load(d) }
        var config = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        config.limits.maxBodySize = maxBody
        server = try HTTPServer(configuration: config, handler: SpectralXService(engine: engine, configuration: api))
        try server.start()
    }

    func request(_ method: String, _ path: String, headers: [(String, String)] = [], body: Data = Data(),
                 declaredLength: Int? = nil) throws -> WireResponse {
        try LoopbackClient.send(port: port, method: method, path: path, headers: headers, body: body, declaredLength: declaredLength)
    }

    func stop() {
        server.shutdown()
        server.waitUntilStopped()
        engine.scheduler.shutdown()
    }
}

/// The server most suites share: the shared store's domains, an admin token, no API keys.
enum SharedServer {
    static let instance: TestServer = {
        var domains = ["syn"]
        if SharedTestStore.fixturesDirectory != nil { domains.append("A") }
        return try! TestServer(root: SharedTestStore.root, domains: domains, api: APIConfiguration(adminToken: "s3cret"))
    }()
}
