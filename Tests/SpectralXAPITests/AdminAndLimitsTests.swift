import Foundation
import SpectralXAPI
import SpectralXEngine
import SpectralXEngineTestSupport
import SpectralXTestSupport
import Synchronization
import Testing

@Suite("Admin routes, API keys, queue limits", .serialized)
struct AdminAndLimitsTests {
    @Test func adminRoutesNeedTheBearerTokenAndLoadUnloadReload() throws {
        let dir = try FakeStore.make()
        defer { try? FileManager.default.removeItem(at: dir) }
        let s = try TestServer(root: dir, domains: [], api: APIConfiguration(adminToken: "t0ken"), fake: .zero)
        defer { s.stop() }
        #expect(try s.request("PUT", "/v1/domains/syn").errorCode! == (401, "unauthorized"))
        #expect(try s.request("PUT", "/v1/domains/syn", headers: [("Authorization", "Bearer t0kem")]).errorCode! == (401, "unauthorized"))
        let auth = [("Authorization", "Bearer t0ken")]
        let created = try s.request("PUT", "/v1/domains/syn", headers: auth)
        #expect(created.status == 201 && created.json["name"] as? String == "syn")
        #expect(try s.request("GET", "/readyz").status == 200)
        #expect(try s.request("PUT", "/v1/domains/syn", headers: auth).status == 200)  // reload
        #expect(try s.request("PUT", "/v1/domains/absent", headers: auth).errorCode! == (404, "unknown_domain"))
        #expect(try s.request("PUT", "/v1/domains/..", headers: auth).errorCode?.0 ?? 404 != 200)
        #expect(try s.request("DELETE", "/v1/domains/syn").errorCode! == (401, "unauthorized"))
        let gone = try s.request("DELETE", "/v1/domains/syn", headers: auth)
        #expect(gone.status == 200)
        #expect(try s.request("GET", "/v1/domains/syn").status == 404)
        #expect(try s.request("GET", "/readyz").status == 503)
        #expect(try s.request("DELETE", "/v1/domains/syn", headers: auth).errorCode! == (404, "unknown_domain"))
        // A broken domain is refused with 422 and leaves the store as it was.
        let bad = dir.appendingPathComponent("domains/bad")
        try FileManager.default.createDirectory(at: bad, withIntermediateDirectories: true)
        try Data("{\"name\": 3}".utf8).write(to: bad.appendingPathComponent("domain.json"))
        #expect(try s.request("PUT", "/v1/domains/bad", headers: auth).errorCode! == (422, "invalid_domain"))
        let list = try s.request("GET", "/v1/domains").json
        #expect((list["failed"] as? [[String: Any]])?.first?["name"] as? String == "bad")
    }

    @Test func apiKeysGuardInferenceAndDomainRoutesOnly() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        let s = try TestServer(root: empty, domains: [], api: APIConfiguration(apiKeys: ["k1", "k2"]), fake: .zero)
        defer { s.stop() }
        #expect(try s.request("GET", "/v1/domains").errorCode! == (401, "unauthorized"))
        #expect(try s.request("GET", "/v1/domains", headers: [("X-API-Key", "k2")]).status == 200)
        #expect(try s.request("GET", "/v1/domains", headers: [("Authorization", "Bearer k1")]).status == 200)
        #expect(try s.request("GET", "/v1/domains", headers: [("X-API-Key", "k3")]).status == 401)
        #expect(try s.request("GET", "/healthz").status == 200)
        #expect(try s.request("GET", "/metrics").status == 200)
    }

    @Test func aFullQueueAnswers503WithRetryAfter() throws {
        // Each batch takes 2 s: the first request runs, the second waits in the queue, the third finds it full.
        let s = try TestServer(root: FakeStore.shared, domains: ["syn"],
                               scheduling: SchedulerConfiguration(maxBatchSize: 1, maxQueueDelay: .zero, maxQueueLength: 1),
                               fake: .seconds(2))
        defer { s.stop() }
        let tile = try npyTile(bands: 4)
        let statuses = Mutex<[Int]>([])
        let retry = Mutex<String?>(nil)
        let group = DispatchGroup()
        for i in 0..<3 {
            group.enter()
            Thread.detachNewThread {
                let r = try? s.request("POST", "/v1/domains/syn/segment?output=json", headers: [("Content-Type", "application/x-npy")], body: tile)
                statuses.withLock { $0.append(r?.status ?? 0) }
                if r?.status == 503 { retry.withLock { $0 = r?.header("Retry-After") } }
                group.leave()
            }
            Thread.sleep(forTimeInterval: i == 0 ? 0.5 : 0.2)
        }
        group.wait()
        let all = statuses.withLock { $0 }.sorted()
        #expect(all == [200, 200, 503], "\(all)")
        #expect(Int(retry.withLock { $0 } ?? "") ?? 0 >= 1)
    }
}
