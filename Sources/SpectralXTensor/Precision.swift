import CSpectralXKernels
import Synchronization

/// The arithmetic of the frozen backbone's linears (ViT-L's and DINOv3's qkv, proj, fc1, fc2), chosen per
/// forward pass. `.fp32` is the reference and the default; `.bf16` rounds both operands of those products
/// to bf16 and accumulates in float32 (``PackedBF16Weight``), twice the multiply-adds per instruction on CPUs
/// with AVX512_BF16. Everything else (LayerNorm, softmax, HyperT, MMoE gating and its log-sum-exp, the
/// Are-adapter's score maps and argmax, neck, head, classifier) stays float32 in both: that is where the
/// argmax is sensitive, and where the time is not.
public enum Precision: String, Sendable, CaseIterable, Hashable, Codable, CustomStringConvertible {
    case fp32, bf16

    public var description: String { rawValue }

    /// Parses `fp32` / `bf16` (also `float32`, `bfloat16`), case-insensitively.
    public init?(name: String) {
        switch name.lowercased() {
        case "fp32", "float32", "f32": self = .fp32
        case "bf16", "bfloat16": self = .bf16
        default: return nil
        }
    }

    /// Why this precision cannot run here, nil when it can. bf16 needs AVX512_BF16 (and `SPECTRALX_SIMD` not
    /// capping the kernels below AVX-512): elsewhere only the exact portable emulation exists, which takes
    /// hours per image, so the model refuses it rather than look hung (the kernel tests still run it).
    public var unavailableReason: String? {
        switch self {
        case .fp32: return nil
        case .bf16:
            if PackedBF16Weight.isAccelerated { return nil }
            return "bf16 needs a CPU with AVX512_BF16 (AMD Zen 4/5, Intel Cooper Lake, Sapphire Rapids and later)"
                + (PackedBF16Weight.cpuHasInstructions ? "; SPECTRALX_SIMD caps the kernels below AVX-512" : "; this one has none")
        }
    }

    private static let atLoad = Mutex<Set<Precision>>([.fp32])

    /// The precisions whose packed weights the frozen linears build when a backbone loads; a forward in
    /// another precision packs its copy on first use (``Linear``). Default `[.fp32]`; a process that runs only
    /// bf16 sets `[.bf16]` before loading, so the float32 packed copies (1.2 GB for ViT-L) are never made.
    public static var packedAtLoad: Set<Precision> {
        get { atLoad.withLock { $0 } }
        set { atLoad.withLock { $0 = newValue } }
    }
}
