import ArgumentParser
import LeaklessCommandSupport

@main
struct FilterCommand: StageCommand {
    static let stageName = "filter"
    @OptionGroup var options: StageOptions
}
