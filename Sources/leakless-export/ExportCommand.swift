import ArgumentParser
import LeaklessStageCommand

@main
struct ExportCommand: StageCommand {
    static let stageName = "export"
    @OptionGroup var options: StageOptions
}
