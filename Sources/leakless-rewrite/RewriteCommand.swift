import ArgumentParser
import LeaklessStageCommand

@main
struct RewriteCommand: StageCommand {
    static let stageName = "rewrite"
    @OptionGroup var options: StageOptions
}
