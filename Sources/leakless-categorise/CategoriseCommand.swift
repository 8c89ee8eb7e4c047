import ArgumentParser
import LeaklessCommandSupport

@main
struct CategoriseCommand: StageCommand {
    static let stageName = "categorise"
    @OptionGroup var options: StageOptions
}
