import ArgumentParser
import LeaklessCommandSupport
import LeaklessStageCommand
import LeaklessDevCommands

/// Development tools: the local stand-in model server and the benchmarks. Not part of the
/// installed `leakless` command.
@main
struct DevCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leakless-dev",
        abstract: "leakless development tools: a local stand-in model server and the benchmarks.",
        subcommands: [MockServerCommand.self, BenchClientCommand.self, BenchDedupCommand.self, BenchEmbedCommand.self, BenchDetectorCommand.self, BenchAuditCommand.self, BenchSelectCommand.self, CrashHarnessCommand.self])

    static func main() {
        prepareProcess()
        main(nil)
    }
}
