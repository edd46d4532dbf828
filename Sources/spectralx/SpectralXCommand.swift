import ArgumentParser

@main
struct SpectralXCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spectralx",
        abstract: "SpectralX remote-sensing segmentation: HTTP inference service, offline prediction, parity and benchmark tools.",
        subcommands: [ServeCommand.self, PredictCommand.self, ForwardCommand.self, SynthCommand.self, BenchCommand.self,
                      InspectCommand.self])
}
