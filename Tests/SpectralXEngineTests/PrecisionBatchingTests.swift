import Foundation
import SpectralXCheckpoint
import SpectralXEngine
import SpectralXEngineTestSupport
import SpectralXTensor
import Synchronization
import Testing

/// A runner on the engine's batch key that records each batch's precisions.
final class PrecisionRecordingRunner: BatchRunner {
    let batches = Mutex<[[Precision]]>([])

    func run(model: DomainRun, inputs: [[Float]]) throws -> [[Float]] {
        batches.withLock { $0.append(Array(repeating: model.precision, count: inputs.count)) }
        Thread.sleep(forTimeInterval: 0.05)
        return inputs
    }
}

@Suite("Precision in batches and job records")
struct PrecisionBatchingTests {
    @Test("images of one domain at two precisions never share a batch")
    func precisionsNeverMix() throws {
        let store = ModelStore(root: FakeStore.shared, binding: .describeOnly)
        try store.load("syn")
        let lease = try store.lease("syn")
        defer { lease.release() }
        let runner = PrecisionRecordingRunner()
        let s = BatchScheduler(runner: runner, configuration: SchedulerConfiguration(maxBatchSize: 4, maxQueueDelay: .milliseconds(80),
                                                                                      maxQueueLength: 64))
        defer { s.shutdown() }
        let outs = concurrently(12) { i in
            try? s.submit(model: DomainRun(lease.domain, precision: i % 2 == 0 ? .fp32 : .bf16), input: [Float(i)])
        }
        for (i, o) in outs.enumerated() { #expect(o?.value == [Float(i)]) }
        let batches = runner.batches.withLock { $0 }
        #expect(batches.reduce(0) { $0 + $1.count } == 12)
        for b in batches { #expect(Set(b).count == 1, "a batch mixed precisions: \(b)") }
    }

    @Test("job options record bf16 and read back; fp32 records keep their earlier form")
    func jobOptionsCoding() throws {
        var o = JobOptions()
        let fp32 = try JSONEncoder().encode(o)
        #expect(!String(decoding: fp32, as: UTF8.self).contains("precision"))
        #expect(try JSONDecoder().decode(JobOptions.self, from: fp32) == o)
        o.precision = .bf16
        let bf16 = try JSONEncoder().encode(o)
        let back = try JSONDecoder().decode(JobOptions.self, from: bf16)
        #expect(back.precision == .bf16 && back.segmentation.precision == .bf16)
    }
}
