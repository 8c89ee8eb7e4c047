import ArgumentParser
import LeaklessStageCommand

@main
struct FilterCommand: StageCommand {
    static let stageName = "filter"
    @OptionGroup var options: StageOptions
}
