import ArgumentParser
import LeaklessCommandSupport

@main
struct SelectCommand: StageCommand {
    static let stageName = "select"
    @OptionGroup var options: StageOptions
}
