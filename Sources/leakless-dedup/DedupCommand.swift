import ArgumentParser
import LeaklessStageCommand

@main
struct DedupCommand: StageCommand {
    static let stageName = "dedup"
    @OptionGroup var options: StageOptions
}
