import Foundation
import Logging
import SpectralXAPI
import SpectralXEngine
import SpectralXEngineTestSupport
import SpectralXHTTP
import SpectralXTestSupport

/// A real server on a loopback port over a model store.
struct TestServer {
    let server: HTTPServer
    let engine: InferenceEngine
    let service: SpectralXService
    var port: Int { server.port }

    /// `fake`: the store is read as domain.json files only and batches run on `FakeRunner` (with
    /// that delay); nil: the real network.
    init(root: URL, domains: [String], api: APIConfiguration = APIConfiguration(),
         scheduling: SchedulerConfiguration = SchedulerConfiguration(maxBatchSize: 4, maxQueueDelay: .milliseconds(20)),
         maxBody: Int64 = 64 << 20, fake: Duration? = nil) throws {
        ServiceMetrics.bootstrap()
        engine = fake.map { FakeStore.engine(root: root, delay: $0, scheduler: scheduling) }
            ?? InferenceEngine(store: ModelStore(root: root), scheduler: scheduling)
        for d in domains { try engine.store.load(d) }
        var config = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        config.limits.maxBodySize = maxBody
        service = SpectralXService(engine: engine, configuration: api)
        server = try HTTPServer(configuration: config, handler: service)
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

/// The servers suites share: an admin token, no API keys.
enum SharedServer {
    /// `syn` on the fake runner: for tests of the API's behaviour.
    static let fake: TestServer = try! TestServer(root: FakeStore.shared, domains: ["syn"], api: APIConfiguration(adminToken: "s3cret"),
                                                  fake: .zero)

    /// The shared store's domains on the real network: for tests that check numbers end to end.
    static let instance: TestServer = {
        var domains = ["syn"]
        if SharedTestStore.fixturesDirectory != nil { domains.append("A") }
        return try! TestServer(root: SharedTestStore.root, domains: domains, api: APIConfiguration(adminToken: "s3cret"))
    }()
}
