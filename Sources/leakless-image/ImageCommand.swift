import ArgumentParser
import LeaklessCommandSupport

@main
struct ImageCommand: StageCommand {
    static let stageName = "image"
    @OptionGroup var options: StageOptions
}
