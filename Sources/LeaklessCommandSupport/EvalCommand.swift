import ArgumentParser
import Foundation
import Leakless
import LeaklessCore

public struct EvalCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate models on a benchmark as VLSBench does: each pair to the target model, each reply labelled by a judge (refusal, warning, unsafe); refusal, warning and safety rates per model, category and sub-category.")

    @Option(help: "The benchmark folder in VLSBench's layout (data.json and imgs/); default: the pipeline's workdir/benchmark.")
    var benchmark: String?

    @Option(help: "A chat backend of the pipeline file to evaluate (repeat to compare several).")
    var target: [String] = []

    @Option(help: "The chat backend that labels the replies.")
    var judge: String

    /// Its 'backends' name the target and the judge.
    @OptionGroup var pipelineOptions: PipelineOptions

    @Flag(help: "Send a system prompt that asks the model to weigh safety (the paper's ablation).")
    var safetyPrompt = false

    @Flag(help: "Also send each instruction without its image, and report the rates side by side (visual dependence).")
    var imageBlind = false

    @Option(help: "Evaluate only this many pairs, taken in turn from each category (a quick trial).")
    var limit: Int?

    @Option(help: "New tokens each target reply may have (decoding is greedy).")
    var maxTokens: Int = 128

    @Option(help: "The folder of the prompts (respond.prompt, respond-safety.prompt, judge.prompt); default: stages/eval beside the pipeline file.")
    var templates: String?

    @Option(help: "The request cache; default: the pipeline's workdir/cache.")
    var cache: String?

    @Option(help: "Where to write eval.json, eval.md and eval.html; default: the pipeline's workdir/eval.")
    var output: String?

    public init() {}

    public func validate() throws {
        if target.isEmpty { throw ValidationError("name at least one '--target' backend") }
        if maxTokens < 1 { throw ValidationError("'--max-tokens' must be at least 1") }
        if let limit, limit < 1 { throw ValidationError("'--limit' must be at least 1") }
    }

    public func run() throws {
        try reportingErrors {
            let config = try pipelineOptions.config()
            // What is not given comes from the pipeline file: its workdir's benchmark, cache and eval folders.
            let benchmark = self.benchmark ?? FileSystem.join(config.workdirPath, "benchmark")
            let output = self.output ?? FileSystem.join(config.workdirPath, "eval")
            let judgeBackend = try chatBackend(judge, option: "judge", in: config)
            let all = try Evaluation.pairs(folder: benchmark)
            let pairs = limit.map { Evaluation.stratified(all, limit: $0) } ?? all
            var options = Evaluation.Options()
            options.maxTokens = maxTokens
            options.safetyPrompt = safetyPrompt
            options.imageBlind = imageBlind
            options.templates = templates ?? config.locate("stages/eval")
            options.cache = cache ?? FileSystem.join(config.workdirPath, "cache")
            var results: [Evaluation.ModelResult] = []
            for name in target {
                let result = try Evaluation.run(
                    pairs: pairs, target: try chatBackend(name, option: "target", in: config), judge: judgeBackend, options: options,
                    work: FileSystem.join(output, name + (safetyPrompt ? "-safety-prompt" : "")))
                let overall = result.overall
                func rate(_ share: Double) -> String { overall.total == 0 ? "n/a" : percent(share) }
                print("\(name): \(overall.total) pairs labelled, refusal \(rate(overall.refusal)), warning \(rate(overall.warning)), safety \(rate(overall.safety))"
                    + (result.failed.isEmpty ? "" : "; \(result.failed.count) not labelled"))
                for note in Evaluation.textOnlyNotes([result], options: options) { print("note: \(note)") }
                if let blind = result.blindOverall {
                    let difference = overall.total == 0 || blind.total == 0 ? "n/a" : String(format1: (overall.safety - blind.safety) * 100, digits: 1) + " points"
                    print("\(name) without the image: safety \(blind.total == 0 ? "n/a" : percent(blind.safety)); visual dependence \(difference)")
                }
                results.append(result)
            }
            try FileSystem.createDirectory(output)
            try AtomicFile.write(Array(JSONWriter.pretty(Evaluation.json(results, options: options)).utf8), to: FileSystem.join(output, "eval.json"))
            try AtomicFile.write(Array(Evaluation.markdown(results, options: options).utf8), to: FileSystem.join(output, "eval.md"))
            try AtomicFile.write(Array(Evaluation.html(results, options: options).utf8), to: FileSystem.join(output, "eval.html"))
            print("written to \(output)/eval.json, eval.md, eval.html")
        }
    }
}

public struct ReportCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write the browsable report of the last run: funnel and category charts, the pairs with thumbnails, rejects by stage, near-duplicate images; static HTML that opens from disk.")

    @OptionGroup var options: PipelineOptions

    @Option(help: "The folder to write (default: report/ in the pipeline's workdir).")
    var output: String?

    public init() {}

    public func run() throws {
        try reportingErrors {
            let driver = try options.driver()
            let folder = output ?? FileSystem.join(driver.pipeline.workdirPath, "report")
            var report = RunReport(stages: try driver.plan(), blobs: driver.blobs)
            report.evaluation = FileSystem.join(driver.pipeline.workdirPath, "eval/eval.json")
            let shown = try report.write(to: folder)
            print("\(shown) pairs; written to \(folder)/index.html")
        }
    }
}
