import ArgumentParser

/// Offline prediction over files (filled in by the service layer).
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "predict", abstract: "Segment tiles offline into label rasters.")
    func run() throws {
        throw CLIError("predict is not implemented yet")
    }
}
