import ArgumentParser
import Leakless
import LeaklessCore
import LeaklessEmbedding

public struct SelectCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "select",
        abstract: "Choose the pairs that best separate the evaluated models, stay harmful and stay diverse, from 'leakless eval' results: on a benchmark folder (--benchmark), or report the pipeline's select stage.",
        discussion: """
            With --benchmark, the folder's pairs are the pool and the chosen ones are written as a new benchmark folder (--output) with select.md, select.html, select.json and selection.jsonl. \
            Without it, the report of the pipeline's select stage (its last run) is written to the workdir's select/ folder.
            """)

    @OptionGroup var pipelineOptions: PipelineOptions

    @Option(help: "A benchmark folder in VLSBench's layout (data.json and imgs/) to select from.")
    var benchmark: String?

    @Option(help: "The eval.json of 'leakless eval' on that benchmark, or a folder of them (default: the pipeline's workdir/eval).")
    var evaluations: String?

    @Option(help: "Pairs to keep.")
    var size: Int?

    @Option(help: "Each category's share: proportional (as in the pool), equal, or table (with --quota-table).")
    var quota: String = "proportional"

    @Option(parsing: .singleValue, help: "With --quota table: 'Category=N', once per category.")
    var quotaTable: [String] = []

    @Option(parsing: .singleValue, help: "A criterion's weight, 'name=value': discrimination, diversity, images, harmfulness, visual_dependence.")
    var weight: [String] = []

    @Option(help: "Item statistics: irt, item_total, or auto (irt from 8 models).")
    var method: String = "auto"

    @Option(help: "The seed of the diversity sample, ties and the bootstrap.")
    var seed: Int64 = 1

    @Option(help: "The sentence-embedding model folder (for diversity).")
    var model: String = SentenceEmbedder.defaultFolder

    @Option(help: "With --benchmark: the folder to write the chosen pairs to (a new benchmark folder).")
    var output: String?

    public init() {}

    public func validate() throws {
        guard benchmark != nil else {
            if size != nil || output != nil || evaluations != nil {
                throw ValidationError("'--size', '--evaluations' and '--output' go with '--benchmark'; the pipeline's select stage takes them from pipeline.yaml")
            }
            return
        }
        guard let size else { throw ValidationError("give '--size N', the pairs to keep") }
        guard output != nil else { throw ValidationError("give '--output FOLDER', where the chosen pairs are written") }
        if size < 1 { throw ValidationError("'--size' must be at least 1") }
        if !["proportional", "equal", "table"].contains(quota) { throw ValidationError("'--quota' must be proportional, equal or table, not '\(quota)'") }
        if quota == "table" && quotaTable.isEmpty { throw ValidationError("'--quota table' needs '--quota-table Category=N' for each category") }
        if quota != "table" && !quotaTable.isEmpty { throw ValidationError("'--quota-table' goes with '--quota table'") }
        if ItemStatisticsMethod(rawValue: method) == nil { throw ValidationError("'--method' must be auto, irt or item_total, not '\(method)'") }
        _ = try settings(size: size)
    }

    func settings(size: Int) throws -> SelectionSettings {
        var settings = SelectionSettings(size: size)
        settings.method = ItemStatisticsMethod(rawValue: method) ?? .auto
        settings.seed = seed
        if quota == "table" {
            var table: [String: Int] = [:]
            for entry in quotaTable {
                let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, let count = Int(parts[1].trimmingCharacters(in: .whitespaces)), count >= 0 else {
                    throw ValidationError("'--quota-table \(entry)': expected 'Category=N' with N a count")
                }
                table[parts[0].trimmingCharacters(in: .whitespaces)] = count
            }
            settings.quota = .table(table)
        } else {
            settings.quota = quota == "equal" ? .equal : .proportional
        }
        for entry in weight {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let value = Double(parts[1]), value >= 0, value.isFinite else {
                throw ValidationError("'--weight \(entry)': expected 'name=value' with a value of 0 or more")
            }
            switch parts[0] {
            case "discrimination": settings.weights.discrimination = value
            case "diversity": settings.weights.diversity = value
            case "images": settings.weights.images = value
            case "harmfulness": settings.weights.harmfulness = value
            case "visual_dependence": settings.weights.visualDependence = value
            default: throw ValidationError("'--weight \(entry)': no criterion '\(parts[0])' (discrimination, diversity, images, harmfulness, visual_dependence)")
            }
        }
        return settings
    }

    public func run() throws {
        try reportingErrors {
            if let benchmark, let size, let output {
                let evaluations: String
                if let given = self.evaluations {
                    evaluations = given
                } else {
                    evaluations = FileSystem.join(try pipelineOptions.config().workdirPath, "eval")
                }
                let outcome = try BenchmarkSelection.run(
                    benchmark: benchmark, evaluations: evaluations, settings: try settings(size: size), quotaRule: quota, model: model, output: output)
                print(Self.summary(outcome.report))
                print("written to \(output) (data.json, imgs/, select.md, select.html, select.json, selection.jsonl)")
                return
            }
            let driver = try pipelineOptions.driver()
            guard let stage = try driver.plan().first(where: { $0.config.name == "select" }) else {
                throw ValidationError("\(pipelineOptions.pipeline) has no select stage: add one after dedup, or give '--benchmark FOLDER'")
            }
            guard FileSystem.exists(stage.files.stats) else {
                throw ValidationError("the select stage of \(pipelineOptions.pipeline) has not run with its present settings: 'leakless run' first")
            }
            let stats = try StageStats.load(path: stage.files.stats)
            guard let json = stats.extra["selection"], let report = try? SelectionReport(json: json) else {
                throw ValidationError("\(stage.files.stats) holds no selection report")
            }
            let folder = FileSystem.join(driver.pipeline.workdirPath, "select")
            try FileSystem.createDirectory(folder)
            try AtomicFile.write(report.markdown(), to: FileSystem.join(folder, "select.md"))
            try AtomicFile.write(JSONWriter.pretty(json), to: FileSystem.join(folder, "select.json"))
            try AtomicFile.write(report.html(), to: FileSystem.join(folder, "select.html"))
            print(Self.summary(report))
            print("written to \(folder)/select.md, select.html, select.json")
        }
    }

    static func summary(_ report: SelectionReport) -> String {
        "\(report.selectedCount) of \(report.evaluated) evaluated pairs chosen (\(report.method.rawValue), \(report.models.count) models); "
            + "Kendall's tau against the pool \(String(format1: report.kendall, digits: 3)) (random subsets \(String(format1: report.randomKendall, digits: 3))), "
            + "Spearman \(String(format1: report.spearman, digits: 3)); left out: "
            + report.leftOut.map { "\($0.reason) \($0.count)" }.joined(separator: ", ")
    }
}
