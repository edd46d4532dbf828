import Foundation
import SpectralXAPI
import SpectralXEngine
import SpectralXEngineTestSupport
import SpectralXHTTP
import SpectralXTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Issue 10's drill as a test: uploads whose clients close right after sending are dropped before
/// they run. The server runs in a child process (an exit test) because `/metrics` is process-wide:
/// in this process other suites' engines record batches into the same histogram at the same time.
@Suite("Abandoned uploads")
struct AbandonedUploadTests {
    @Test func uploadsWhoseClientsCloseRightAfterSendingAreCountedAndNotComputed() async throws {
        let root = try FakeStore.make().path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) { [root = root as String] in
            do {
                try AbandonedUploadDrill.run(root: URL(fileURLWithPath: root))
            } catch {
                AbandonedUploadDrill.say("abandoned-upload drill: \(error)")
                exit(1)
            }
        }
        if let result, result.exitStatus != ExitStatus.exitCode(EXIT_SUCCESS) {
            Issue.record("child said: \(String(decoding: result.standardErrorContent, as: UTF8.self))")
        }
    }
}

/// What runs in the child process. Every wait is bounded; a watchdog ends the process if one is not.
enum AbandonedUploadDrill {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static func say(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }

    static func run(root: URL) throws {
        DispatchQueue.global().asyncAfter(deadline: .now() + 300) {
            say("abandoned-upload drill: watchdog: still running after 300 s")
            exit(3)
        }
        let s = try TestServer(root: root, domains: ["syn"], fake: .zero)
        defer { s.stop() }
        let tile = try npyTile(bands: 4)
        let segment = "/v1/domains/syn/segment?output=json"

        // The first request's batch is held in the scheduler until the four abandoned uploads have
        // been seen to go: they queue behind a busy scheduler, not next to it.
        let batches = Batches()
        let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        s.engine.scheduler.setBatchObserver { size in
            if batches.record(size) == 1 {
                entered.signal()
                release.wait()
            }
        }
        defer { s.engine.scheduler.setBatchObserver(nil); release.signal() }

        let before = try metrics(s)
        let firstStatus = Cell<Int?>(nil)
        let firstDone = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            let status = try? s.request("POST", segment, headers: [("Content-Type", "application/x-npy")], body: tile).status
            firstStatus.set(status ?? -1)
            firstDone.signal()
        }
        guard entered.wait(timeout: .now() + 120) == .success else { throw Failure(description: "the first batch never started") }

        for _ in 0..<4 { try sendAndClose(port: s.port, path: segment, body: tile) }
        // The server noticed every hang-up while the request was in its handler.
        try waitFor("4 client hang-ups", 60) { s.server.abandonedRequestCount == 4 }
        release.signal()
        guard firstDone.wait(timeout: .now() + 120) == .success else { throw Failure(description: "the first request never finished") }
        let status = firstStatus.value
        guard status == 200 else { throw Failure(description: "the first request answered \(String(describing: status))") }

        var after = try metrics(s)
        try waitFor("spectralx_requests_abandoned_total to rise by 4", 60) {
            after = (try? metrics(s)) ?? after
            return after.abandoned - before.abandoned >= 4
        }
        let abandoned = after.abandoned - before.abandoned, batchSum = after.batchSum - before.batchSum
        say("abandoned +\(abandoned), batch-size sum +\(batchSum), batches run \(batches.sizes)")
        guard abandoned == 4 else { throw Failure(description: "spectralx_requests_abandoned_total rose by \(abandoned), not 4") }
        guard batchSum <= 1 else { throw Failure(description: "spectralx_batch_size_sum rose by \(batchSum): abandoned images were computed") }
        guard batches.sizes == [1] else { throw Failure(description: "batches run: \(batches.sizes), expected only the first request's") }
    }

    final class Cell<T: Sendable>: Sendable {
        private let m: Mutex<T>
        init(_ v: T) { m = Mutex(v) }
        var value: T { m.withLock { $0 } }
        func set(_ v: T) { m.withLock { $0 = v } }
    }

    /// The batch sizes the scheduler ran, in order.
    final class Batches: Sendable {
        private let log = Mutex<[Int]>([])
        var sizes: [Int] { log.withLock { $0 } }
        /// Appends; returns how many batches have run.
        func record(_ size: Int) -> Int { log.withLock { $0.append(size); return $0.count } }
    }

    static func metrics(_ s: TestServer) throws -> (abandoned: Double, batchSum: Double) {
        let text = try s.request("GET", "/metrics").text
        func value(_ name: String) -> Double {
            let line = text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
            return line.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        }
        return (value("spectralx_requests_abandoned_total"), value("spectralx_batch_size_sum"))
    }

    static func waitFor(_ what: String, _ seconds: Double, _ condition: () -> Bool) throws {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while !condition() {
            guard Date() < deadline else { throw Failure(description: "timed out waiting for \(what)") }
            usleep(10_000)
        }
    }

    /// One complete upload, then close without reading the answer.
    static func sendAndClose(port: Int, path: String, body: Data) throws {
        let fd = try LoopbackClient.connect(port: port)
        defer { close(fd) }
        var out = Data("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-npy\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
        out.append(body)
        LoopbackClient.writeAll(fd, out)
    }
}
