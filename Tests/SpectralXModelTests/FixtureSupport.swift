import Foundation
import SpectralXLayers
import SpectralXModel
import SpectralXTensor
import SpectralXTestSupport

/// The upstream reference data (`../shared/fixtures`), when present.
enum Fixtures {
    static var root: URL? { SharedTestStore.fixturesDirectory }
    static func url(_ name: String) -> URL? { root?.appendingPathComponent(name) }
    static var skipReason: String { SharedTestStore.skipReason }
}

/// Minimal little-endian `.npy` loader for fixture arrays (f4 and i8, C order).
enum NpyFixture {
    static func load(_ url: URL) throws -> (shape: [Int], data: Data, descr: String) {
        let d = try Data(contentsOf: url)
        let major = d[6]
        let hlen = major == 1 ? Int(d[8]) | Int(d[9]) << 8 : Int(d[8]) | Int(d[9]) << 8 | Int(d[10]) << 16 | Int(d[11]) << 24
        let start = major == 1 ? 10 : 12
        let header = String(decoding: d[start..<(start + hlen)], as: UTF8.self)
        let descr = header.components(separatedBy: "'descr': '")[1].components(separatedBy: "'")[0]
        let shapeText = header.components(separatedBy: "'shape': (")[1].components(separatedBy: ")")[0]
        let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        return (shape, d.subdata(in: (start + hlen)..<d.count), descr)
    }

    /// Small upstream-made arrays copied into the repository so their tests always run.
    static let bundled = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Data")

    static func tensor(_ name: String) throws -> Tensor { try tensor(at: Fixtures.url(name)!) }

    static func tensor(at url: URL) throws -> Tensor {
        let (shape, data, descr) = try load(url)
        precondition(descr == "<f4", "\(url.lastPathComponent): \(descr)")
        let t = Tensor(zeros: shape)
        data.withUnsafeBytes { raw in
            t.mutablePointer.update(from: raw.bindMemory(to: Float.self).baseAddress!, count: t.count)
        }
        return t
    }

    static func int64(_ name: String) throws -> (shape: [Int], values: [Int]) { try int64(at: Fixtures.url(name)!) }

    static func int64(at url: URL) throws -> (shape: [Int], values: [Int]) {
        let (shape, data, descr) = try load(url)
        precondition(descr == "<i8")
        let values = data.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)).map { Int($0) } }
        return (shape, values)
    }
}

/// Error statistics between two float arrays.
struct Comparison: CustomStringConvertible {
    var maxAbs: Float = 0
    var maxRel: Float = 0
    var refMaxAbs: Float = 0
    var count = 0

    init(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
        self.count = count
        for i in 0..<count { refMaxAbs = max(refMaxAbs, abs(b[i])) }
        for i in 0..<count {
            let d = abs(a[i] - b[i])
            if !(d <= maxAbs) { maxAbs = d.isNaN ? .infinity : max(maxAbs, d) }
            maxRel = max(maxRel, d / max(abs(b[i]), 1e-3 * refMaxAbs))
        }
    }

    init(_ a: Tensor, _ b: Tensor) {
        precondition(a.count == b.count, "\(a.shape) vs \(b.shape)")
        self.init(a.pointer, b.pointer, count: a.count)
    }

    var description: String { String(format: "max|Δ| %.3g, max rel %.3g (ref max %.3g, n=%d)", maxAbs, maxRel, refMaxAbs, count) }
}
