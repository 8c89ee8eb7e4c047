import ArgumentParser
import LeaklessCommandSupport

@main
struct DedupCommand: StageCommand {
    static let stageName = "dedup"
    @OptionGroup var options: StageOptions
}
