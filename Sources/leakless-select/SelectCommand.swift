import ArgumentParser
import LeaklessStageCommand

@main
struct SelectCommand: StageCommand {
    static let stageName = "select"
    @OptionGroup var options: StageOptions
}
