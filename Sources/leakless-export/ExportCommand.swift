import ArgumentParser
import LeaklessCommandSupport

@main
struct ExportCommand: StageCommand {
    static let stageName = "export"
    @OptionGroup var options: StageOptions
}
