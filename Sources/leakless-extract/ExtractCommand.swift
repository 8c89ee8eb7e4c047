import ArgumentParser
import LeaklessStageCommand

@main
struct ExtractCommand: StageCommand {
    static let stageName = "extract"
    @OptionGroup var options: StageOptions
}
