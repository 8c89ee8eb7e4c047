import ArgumentParser
import LeaklessStageCommand

@main
struct DetectCommand: StageCommand {
    static let stageName = "detect"
    @OptionGroup var options: StageOptions
}
