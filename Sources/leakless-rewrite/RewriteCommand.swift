import ArgumentParser
import LeaklessCommandSupport

@main
struct RewriteCommand: StageCommand {
    static let stageName = "rewrite"
    @OptionGroup var options: StageOptions
}
