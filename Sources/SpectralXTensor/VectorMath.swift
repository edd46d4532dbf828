import CSpectralXKernels
import Foundation

/// The vectorised kernels between GEMMs (softmax, GELU, LayerNorm, Winograd tile transforms), from the C
/// target `CSpectralXKernels`: one definition compiled for 4-lane (SSE2/NEON), AVX2+FMA and AVX-512
/// vectors, the widest this CPU supports chosen at first use (`SPECTRALX_SIMD=generic|avx2|avx512` caps
/// it). Swift code itself is compiled for baseline x86-64, so its SIMD types stay at SSE width.
///
/// `exp` is the Cephes single-precision scheme (range reduction by ln 2 in two parts, degree-6
/// polynomial, exponent by bit construction); its error is ≤ 2 ulp over the range used, the level of
/// libm's `expf`. Inputs below −87.3 give ≈1e-38 instead of denormals/0, irrelevant where it is used
/// (softmax terms after max subtraction, erf's exp(−x²)); the MMoE, whose semantics depend on exact
/// underflow to 0, keeps libm.
public struct VectorMath: Sendable {
    /// `@unchecked Sendable`: a pointer to a static, immutable C table of function pointers.
    private struct Table: @unchecked Sendable { let pointer: UnsafePointer<sx_kernels> }
    private let table: Table

    /// The widest kernels this CPU supports (what every caller in the model uses).
    public static let best = VectorMath(table: Table(pointer: sx_kernels_best()))

    /// Every level this CPU supports, narrowest first (for tests that check each one).
    public static var available: [VectorMath] {
        (0...2).compactMap { sx_kernels_at(Int32($0)).map { VectorMath(table: Table(pointer: $0)) } }
    }

    private init(table: Table) { self.table = table }

    /// "generic", "avx2" or "avx512".
    public var name: String { String(cString: table.pointer.pointee.name) }

    /// In place `x[i] = exp(x[i] − shift)`; returns the sum of the results.
    @inline(__always)
    public func expShifted(_ x: UnsafeMutablePointer<Float>, count: Int, shift: Float) -> Float {
        table.pointer.pointee.exp_shifted(x, count, shift)
    }

    /// Row-wise softmax in place (max subtraction, exp, normalise), on the calling thread.
    @inline(__always)
    public func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int, stride: Int) {
        table.pointer.pointee.softmax_rows(x, rows, cols, stride)
    }

    /// In-place GELU (PyTorch's erf, see ``Activations/gelu(_:count:)``), on the calling thread.
    @inline(__always)
    public func gelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        table.pointer.pointee.gelu(x, count)
    }

    /// Row-wise LayerNorm (float64 moments), on the calling thread.
    @inline(__always)
    public func layerNormRows(_ x: UnsafePointer<Float>, rows: Int, dim: Int, rowStride: Int,
                              gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float,
                              into y: UnsafeMutablePointer<Float>, outStride: Int) {
        table.pointer.pointee.layernorm_rows(x, rows, dim, rowStride, gamma, beta, eps, y, outStride)
    }

    /// Winograd F(2×2, 3×3) input transform of channels `range` (see ``WinogradConvolution``).
    @inline(__always)
    public func winogradInput(_ image: UnsafePointer<Float>, channels: Int, height: Int, width: Int, range: Range<Int>,
                       into v: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        table.pointer.pointee.winograd_input(image, channels, height, width, range.lowerBound, range.upperBound, v, scratch)
    }

    /// Winograd F(4×4, 3×3) input transform of channels `range` (see ``WinogradConvolution``).
    @inline(__always)
    public func winograd4Input(_ image: UnsafePointer<Float>, channels: Int, height: Int, width: Int, range: Range<Int>,
                               into v: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        table.pointer.pointee.winograd4_input(image, channels, height, width, range.lowerBound, range.upperBound, v, scratch)
    }

    /// Winograd F(4×4, 3×3) output transform of channels `range` (see ``WinogradConvolution``).
    @inline(__always)
    public func winograd4Output(_ m: UnsafePointer<Float>, channels: Int, height: Int, width: Int, range: Range<Int>,
                                into out: UnsafeMutablePointer<Float>) {
        table.pointer.pointee.winograd4_output(m, channels, height, width, range.lowerBound, range.upperBound, out)
    }

    /// Winograd F(2×2, 3×3) output transform of channels `range` (see ``WinogradConvolution``).
    @inline(__always)
    public func winogradOutput(_ m: UnsafePointer<Float>, channels: Int, height: Int, width: Int, range: Range<Int>,
                        into out: UnsafeMutablePointer<Float>) {
        table.pointer.pointee.winograd_output(m, channels, height, width, range.lowerBound, range.upperBound, out)
    }
}
