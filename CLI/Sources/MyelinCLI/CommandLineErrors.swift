import ArgumentParser
import Foundation
import Myelin

// How the `myelin` command reports an error thrown after its arguments were parsed: with the usage of the
// subcommand that failed (not the root's), and with advice about the command line instead of Swift API arguments.

extension MyelinCommand {
    /// Parses the arguments and runs the command; an error from `run()` is reported by `report(_:of:)`.
    static func parseAndRun() {
        var command: ParsableCommand
        do { command = try parseAsRoot() } catch { exit(withError: error) }
        do { try command.run() } catch { report(error, of: type(of: command)) }
    }

    /// Prints `error` and exits. A `ValidationError` is followed by the usage of `subcommand` (with its full path,
    /// `myelin train fashion-mnist ...`) and exits with 64 like a parse error; other errors print their message in
    /// command-line words (`CommandLineAdvice.text(for:)`) and exit with 1; `ExitCode` and help requests go to the
    /// argument parser as they are.
    static func report(_ error: Error, of subcommand: ParsableCommand.Type) -> Never {
        switch error {
        case let error as ValidationError:
            let path = ([MyelinCommand.configuration.commandName ?? "myelin"] + commandPath(to: subcommand)).joined(separator: " ")
            let usage = usageString(for: subcommand).replacingOccurrences(of: "\n", with: "\n       ")
            FileHandle.standardError.write(Data("Error: \(error.message)\nUsage: \(usage)\n  See '\(path) --help' for more information.\n".utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        case is ExitCode, is CleanExit:
            exit(withError: error)
        case _ where String(reflecting: type(of: error)).hasPrefix("ArgumentParser."):
            // The parser's own errors, such as `--help` after a subcommand (`parseAsRoot` returns its help
            // command, whose `run` throws the parser's internal help request): the parser prints them.
            exit(withError: error)
        default:
            FileHandle.standardError.write(Data("Error: \(CommandLineAdvice.text(for: error))\n".utf8))
            Foundation.exit(ExitCode.failure.rawValue)
        }
    }

    /// The subcommand names from the root down to `target` (empty for the root itself).
    static func commandPath(to target: ParsableCommand.Type, from command: ParsableCommand.Type = MyelinCommand.self) -> [String] {
        for sub in command.configuration.subcommands {
            let name = sub.configuration.commandName ?? String(describing: sub).lowercased()
            if sub == target { return [name] }
            let below = commandPath(to: target, from: sub)
            if !below.isEmpty { return [name] + below }
        }
        return []
    }
}

/// Error messages in command-line words: the library's advice that names a Swift API argument (`SwiftAPIAdvice`)
/// is replaced by what to do with the `myelin` command, or by saying that it has no such option.
enum CommandLineAdvice {
    static let replacements: [(String, String)] = [
        (SwiftAPIAdvice.loadNotStrict,
         " (--load needs a file saved for the same model and options, such as --model, --hidden and --depth; the myelin command has no option to load only the tensors both have)"),
        (SwiftAPIAdvice.saveNonFinite, "the myelin command has no option to save it anyway"),
        (SwiftAPIAdvice.loadNonFinite, "the myelin command has no option to load it anyway; start from an earlier checkpoint or without --load"),
        (SwiftAPIAdvice.noDivergenceCheck, " with --lr; the myelin command has no option to turn this check off"),
        (SwiftAPIAdvice.plainModelFile, ", although its metadata says it is one: the file is damaged (a model file without that 'format' loads its weights only)"),
    ]

    /// The message of `error` with every Swift API advice replaced.
    static func text(for error: Error) -> String {
        replacements.reduce("\(error)") { $0.replacingOccurrences(of: $1.0, with: $1.1) }
    }
}
