import Foundation
import SpectralXLayers
import SpectralXModel
import SpectralXRaster
import SpectralXTensor
import SpectralXTestSupport

/// The upstream reference data (`../shared/fixtures`), when present.
enum Fixtures {
    static var root: URL? { SharedTestStore.fixturesDirectory }
    static func url(_ name: String) -> URL? { root?.appendingPathComponent(name) }
    static var skipReason: String { SharedTestStore.skipReason }
}

/// Fixture arrays through the project's own NumPy reader (`SpectralXRaster`).
enum NpyFixture {
    /// Small upstream-made arrays copied into the repository so their tests always run.
    static let bundled = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Data")

    static func tensor(_ name: String) throws -> Tensor { try tensor(at: Fixtures.url(name)!) }

    static func tensor(at url: URL) throws -> Tensor {
        let (shape, values) = try NumPy.readFloat32(path: url.path)
        return Tensor(shape: shape, values: values)
    }

    static func int64(_ name: String) throws -> (shape: [Int], values: [Int]) { try int64(at: Fixtures.url(name)!) }

    static func int64(at url: URL) throws -> (shape: [Int], values: [Int]) {
        let (shape, values) = try NumPy.readInt64(path: url.path)
        return (shape, values.map { Int($0) })
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
