import ArgumentParser
import Leakless
import LeaklessCommandSupport
import LeaklessStageCommand

@main
struct LeaklessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leakless",
        abstract: "Build multimodal safety benchmarks free of visual safety information leakage.",
        version: LeaklessVersion.current,
        subcommands: [
            RunCommand.self, StatusCommand.self, ValidateCommand.self, HashCommand.self, StagesCommand.self, EmbedCommand.self, TrainDetectorCommand.self, InitCommand.self, TaxonomyCommand.self,
            AuditCommand.self, DetectorQualityCommand.self, EvalCommand.self, SelectCommand.self, ReportCommand.self, ReviewCommand.self,
        ])

    static func main() {
        prepareProcess()
        main(nil)
    }
}
