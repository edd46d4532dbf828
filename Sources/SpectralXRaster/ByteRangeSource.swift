import Foundation
import Synchronization

/// The bytes of an object by range: what `TIFFScene` reads a file it does not hold through (a COG
/// read in place over HTTP(S) or S3, implemented in SpectralXRemote, as this target knows nothing
/// of networks). A mapped or in-memory file does not go through here: `TIFFScene` reads it in place.
public protocol ByteRangeSource: Sendable {
    /// The object's size in bytes, fixed at open.
    var size: Int { get }
    /// Where the bytes come from, for messages (never credentials or query strings).
    var name: String { get }
    /// The bytes of each range (each inside `0..<size`), in the order given. Implementations fetch
    /// adjacent ranges in one request and fail rather than return bytes of another version of the object.
    func read(_ ranges: [Range<Int>]) throws -> [Data]
}

/// Counters of reads by range, shared by the sources of one job (and summed for the process).
public final class FetchCounters: Sendable {
    private let bytesCounter = Atomic<Int>(0), requestsCounter = Atomic<Int>(0), retriesCounter = Atomic<Int>(0)
    private let hitsCounter = Atomic<Int>(0), missesCounter = Atomic<Int>(0)

    public init() {}

    /// Response body bytes received.
    public var bytes: Int { bytesCounter.load(ordering: .relaxed) }
    /// Requests answered (a retried request counts once; its retries count in `retries`).
    public var requests: Int { requestsCounter.load(ordering: .relaxed) }
    public var retries: Int { retriesCounter.load(ordering: .relaxed) }
    public var cacheHits: Int { hitsCounter.load(ordering: .relaxed) }
    public var cacheMisses: Int { missesCounter.load(ordering: .relaxed) }

    public func add(bytes: Int = 0, requests: Int = 0, retries: Int = 0, cacheHits: Int = 0, cacheMisses: Int = 0) {
        if bytes != 0 { bytesCounter.add(bytes, ordering: .relaxed) }
        if requests != 0 { requestsCounter.add(requests, ordering: .relaxed) }
        if retries != 0 { retriesCounter.add(retries, ordering: .relaxed) }
        if cacheHits != 0 { hitsCounter.add(cacheHits, ordering: .relaxed) }
        if cacheMisses != 0 { missesCounter.add(cacheMisses, ordering: .relaxed) }
    }

    /// The process's totals (`/metrics`).
    public static let process = FetchCounters()
}

/// Bytes held in memory, served by range: for tests of the by-range path without a network
/// (it counts each `read` call as one request).
public final class DataByteSource: ByteRangeSource {
    public let data: Data
    public let name: String
    public let counters = FetchCounters()
    public var size: Int { data.count }

    public init(_ data: Data, name: String = "memory") {
        self.data = data
        self.name = name
    }

    public func read(_ ranges: [Range<Int>]) throws -> [Data] {
        counters.add(bytes: ranges.reduce(0) { $0 + $1.count }, requests: 1)
        return try ranges.map { r in
            guard r.lowerBound >= 0, r.upperBound <= data.count else {
                throw RasterError.offsetOutOfRange(what: "range", offset: UInt64(max(0, r.lowerBound)), length: UInt64(r.count),
                                                   fileSize: UInt64(data.count))
            }
            return data.subdata(in: (data.startIndex + r.lowerBound)..<(data.startIndex + r.upperBound))
        }
    }
}
