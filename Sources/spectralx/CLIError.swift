import ArgumentParser
import Foundation

/// A runtime failure reported as one clear line on stderr and exit status 1 (usage errors are the
/// argument parser's, exit status 2).
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}

extension ParsableCommand {
    /// Runs `body`, turning any thrown error into `spectralx: <message>` and exit code 1.
    func reportingFailures(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let e as ExitCode {
            throw e
        } catch let e as ValidationError {
            throw e
        } catch {
            FileHandle.standardError.write(Data("spectralx: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}
