import ArgumentParser
import Leakless

/// A stage executable: names its stage and takes the shared stage options; everything else is here.
public protocol StageCommand: ParsableCommand {
    static var stageName: String { get }
    var options: StageOptions { get }
}

extension StageCommand {
    public static var configuration: CommandConfiguration {
        let summary = StageRegistry.definition(named: stageName)?.summary ?? ""
        return CommandConfiguration(commandName: "leakless-\(stageName)", abstract: "The \(stageName) stage: \(summary).")
    }

    public func run() throws {
        try options.run(stage: Self.stageName)
    }
}
