import CBLAS
import Foundation

/// Which OpenBLAS kernels this process runs, and the correction of a known misdetection.
///
/// A `DYNAMIC_ARCH` OpenBLAS picks its kernels from the CPU model number when it is loaded. A build
/// older than the CPU does not know the model and falls back to its most generic kernels: Debian 12's
/// 0.3.21 on an Emerald Rapids Xeon (family 6, model 0xCF, AVX-512) runs the SSE3 "Prescott" sgemm at
/// about 55 GFLOP/s instead of the SkylakeX kernel's 240–290 on the same 2 cores. So once, before the
/// first GEMM, we compare the chosen kernel family with what the CPU reports (`/proc/cpuinfo` flags,
/// which also reflect what the kernel enabled) and, when OpenBLAS chose a lower family, re-run its
/// own dynamic initialisation with `OPENBLAS_CORETYPE` set, the documented override.
///
/// An `OPENBLAS_CORETYPE` already in the environment is the operator's choice and is never changed
/// (some OpenBLAS builds compute wrong results on some CPUs, and that is how such hosts pin a kernel).
/// A non-dynamic OpenBLAS (no `gotoblas_dynamic_init`) is left as it is, with the reason recorded.
public enum BLASRuntime {
    /// What was found and done; `active` is the kernel family every GEMM uses.
    public struct Selection: Sendable, Equatable {
        /// The family OpenBLAS chose by itself.
        public var detected: String
        /// The family in use after the check.
        public var active: String
        /// Why `active` differs from `detected`, or why it was not changed; nil when nothing was needed.
        public var note: String?
    }

    /// Performed once, on first use (``GEMM`` touches it before its first call).
    public static let selection: Selection = select(environment: ProcessInfo.processInfo.environment,
                                                    cpuFlags: cpuFlags())

    /// Kernel families by instruction-set level (OpenBLAS `OPENBLAS_CORETYPE` names, lower-cased).
    public static func level(ofCore name: String) -> Int {
        switch name.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return 3
        case "haswell", "zen", "excavator", "steamroller": return 2
        case "sandybridge", "bulldozer", "piledriver": return 1
        default: return 0
        }
    }

    /// The best family the CPU's flags allow, with its level.
    public static func bestCore(forFlags flags: Set<String>) -> (name: String, level: Int)? {
        if ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"].allSatisfy(flags.contains) { return ("SkylakeX", 3) }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return ("Haswell", 2) }
        if flags.contains("avx") { return ("Sandybridge", 1) }
        return nil
    }

    /// The decision, separated from its effect so it is testable: returns the family to force, if any.
    public static func decide(detected: String, environment: [String: String], cpuFlags: Set<String>?) -> (force: String?, note: String?) {
        if let pinned = environment["OPENBLAS_CORETYPE"], !pinned.isEmpty {
            return (nil, "OPENBLAS_CORETYPE=\(pinned) from the environment, left as it is")
        }
        guard let flags = cpuFlags, let best = bestCore(forFlags: flags) else { return (nil, nil) }
        guard level(ofCore: detected) < best.level else { return (nil, nil) }
        return (best.name, "OpenBLAS chose \(detected) kernels on a CPU with \(best.name)-level instructions (a CPU newer than this OpenBLAS); switched to \(best.name) (set OPENBLAS_CORETYPE to choose)")
    }

    static func select(environment: [String: String], cpuFlags: Set<String>?) -> Selection {
        let detected = coreName()
        let (force, note) = decide(detected: detected, environment: environment, cpuFlags: cpuFlags)
        guard let force else { return Selection(detected: detected, active: detected, note: note) }
        // gotoblas_dynamic_quit/init are exported by DYNAMIC_ARCH builds only; looked up, not linked.
        guard let handle = dlopen(nil, RTLD_NOW),
              let quit = dlsym(handle, "gotoblas_dynamic_quit"), let initialise = dlsym(handle, "gotoblas_dynamic_init")
        else {
            return Selection(detected: detected, active: detected,
                             note: "OpenBLAS chose \(detected) kernels on a \(force)-level CPU and is not a dynamic-arch build; set OPENBLAS_CORETYPE=\(force) before start")
        }
        // Left set: it documents the choice to anyone reading the process environment. The CLI makes
        // this selection before it starts threads (setenv is not safe against concurrent getenv).
        typealias Entry = @convention(c) () -> Void
        setenv("OPENBLAS_CORETYPE", force, 1)
        unsafeBitCast(quit, to: Entry.self)()
        unsafeBitCast(initialise, to: Entry.self)()
        return Selection(detected: detected, active: coreName(), note: note)
    }

    static func coreName() -> String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name).trimmingCharacters(in: .whitespaces)
    }

    /// The `flags` of the first processor in `/proc/cpuinfo`; nil where there is none (not Linux/x86).
    public static func cpuFlags() -> Set<String>? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        }
        return nil
    }
}
