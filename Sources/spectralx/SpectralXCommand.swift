import ArgumentParser
import Foundation
import SpectralXTensor

@main
struct SpectralXCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spectralx",
        abstract: "SpectralX remote-sensing segmentation: HTTP inference service, offline prediction, parity and benchmark tools.",
        subcommands: [ServeCommand.self, PredictCommand.self, ForwardCommand.self, SynthCommand.self, BenchCommand.self,
                      InspectCommand.self, ImportCommand.self, HealthcheckCommand.self])

    /// The contract's exit codes: 0 ok, 1 runtime failure, 2 usage error. The argument parser reports
    /// usage errors as EX_USAGE (64) on Linux, so they are mapped here.
    static func main() {
        AllocatorTuning.retainLargeAllocations()
        PackedWeight.useWhereFaster()   // one model per process here (see PackedWeight)
        _ = BLASRuntime.selection  // while the process is still single-threaded (it may setenv)
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}
