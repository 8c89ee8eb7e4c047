import ArgumentParser
import LeaklessCommandSupport

@main
struct ExtractCommand: StageCommand {
    static let stageName = "extract"
    @OptionGroup var options: StageOptions
}
