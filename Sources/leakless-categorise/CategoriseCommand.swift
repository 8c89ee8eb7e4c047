import ArgumentParser
import LeaklessStageCommand

@main
struct CategoriseCommand: StageCommand {
    static let stageName = "categorise"
    @OptionGroup var options: StageOptions
}
