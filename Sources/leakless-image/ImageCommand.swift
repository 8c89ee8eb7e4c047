import ArgumentParser
import LeaklessStageCommand

@main
struct ImageCommand: StageCommand {
    static let stageName = "image"
    @OptionGroup var options: StageOptions
}
