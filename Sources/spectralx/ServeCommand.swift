import ArgumentParser

/// Runs the HTTP inference service (filled in by the service layer).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the HTTP inference server.")
    func run() throws {
        throw CLIError("serve is not implemented yet")
    }
}
