/// A dense, row-major float32 tensor with PyTorch's shape conventions: `(B, C, H, W)` for feature maps,
/// `(B, N, D)` for token sequences.
///
/// A tensor is a view (`offset`, `shape`) on a shared ``FloatStorage``; reshaping and slicing the
/// leading axis are free. Kernels take raw pointers, so layers read with ``pointer`` and write only into
/// tensors they created themselves (see ``FloatStorage``).
public struct Tensor: Sendable {
    public let shape: [Int]
    public let storage: FloatStorage
    public let offset: Int

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }

    /// A zero-filled tensor.
    public init(zeros shape: [Int]) {
        let n = shape.reduce(1, *)
        self.shape = shape
        self.storage = FloatStorage(count: n)
        self.offset = 0
    }

    /// A tensor whose elements are not cleared, for an output its producer writes completely.
    public init(uninitialized shape: [Int]) {
        self.shape = shape
        self.storage = FloatStorage(uninitializedCount: shape.reduce(1, *))
        self.offset = 0
    }

    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        self.init(zeros: shape)
        values.withUnsafeBufferPointer { src in
            if let s = src.baseAddress { storage.base.update(from: s, count: values.count) }
        }
    }

    public init(shape: [Int], storage: FloatStorage, offset: Int = 0) {
        precondition(offset + shape.reduce(1, *) <= storage.count, "view \(shape)+\(offset) exceeds storage")
        self.shape = shape
        self.storage = storage
        self.offset = offset
    }

    public var pointer: UnsafePointer<Float> { UnsafePointer(storage.base + offset) }

    /// Write access, for the code that created this tensor (see ``FloatStorage``).
    public var mutablePointer: UnsafeMutablePointer<Float> { storage.base + offset }

    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(shape: newShape, storage: storage, offset: offset)
    }

    /// Items `range` of the leading axis, sharing storage.
    public func slice(_ range: Range<Int>) -> Tensor {
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[0])
        let inner = shape.dropFirst().reduce(1, *)
        return Tensor(shape: [range.count] + shape.dropFirst(), storage: storage, offset: offset + range.lowerBound * inner)
    }

    public func toArray() -> [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    /// A deep copy into fresh owned storage.
    public func copy() -> Tensor {
        let t = Tensor(zeros: shape)
        t.mutablePointer.update(from: pointer, count: count)
        return t
    }

    /// Concatenates tensors along the leading axis.
    public static func concatenate(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty)
        let inner = Array(parts[0].shape.dropFirst())
        let total = parts.reduce(0) { $0 + $1.shape[0] }
        let out = Tensor(zeros: [total] + inner)
        var at = 0
        for p in parts {
            precondition(Array(p.shape.dropFirst()) == inner, "concatenate: \(p.shape) vs \(inner)")
            (out.mutablePointer + at).update(from: p.pointer, count: p.count)
            at += p.count
        }
        return out
    }
}
