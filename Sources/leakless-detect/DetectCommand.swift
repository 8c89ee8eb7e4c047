import ArgumentParser
import LeaklessCommandSupport

@main
struct DetectCommand: StageCommand {
    static let stageName = "detect"
    @OptionGroup var options: StageOptions
}
