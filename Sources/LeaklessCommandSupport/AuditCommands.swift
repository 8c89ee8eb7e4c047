import ArgumentParser
import Foundation
import Leakless
import LeaklessCore
import LeaklessEmbedding

extension BenchmarkFormat: ExpressibleByArgument {}

/// The chat backend a command option names, from the pipeline file's `backends`.
func chatBackend(_ name: String, option: String, in config: PipelineConfig) throws -> BackendConfig {
    guard let backend = config.backends[name] else {
        throw ValidationError("'--\(option) \(name)': \(config.path) has no backend of that name (it has: \(config.backends.keys.sorted().joined(separator: ", ")))")
    }
    guard backend.backendKind.serves == "chat" else {
        throw ValidationError("'--\(option) \(name)' is a '\(backend.kind)' backend; it must be a chat backend")
    }
    return backend
}

/// What audit and detector-quality share: the judge and where its settings come from.
public struct JudgeOptions: ParsableArguments {
    @Option(name: .customLong("judge"), help: "'builtin' (the lexical detector), 'embedding' (the learned heads on sentence embeddings), 'classifier' (the fine-tuned harm classifier with the lexicon, and the leak head), or the name of a backend in the pipeline file: an LLM judge (openai-chat), Llama Guard (llamaguard) or a moderation endpoint (openai-moderation). Default: classifier (audit), builtin (detector-quality).")
    var chosenJudge: String?

    /// The judge asked for, or builtin (a command with another default sets `chosenJudge` first).
    var judge: String { chosenJudge ?? "builtin" }

    @Option(help: "The embedding judge's model folder and heads.")
    var model: String = SentenceEmbedder.defaultFolder

    @Option(help: "The embedding judge's trained heads.")
    var heads: String = DetectorSettings.defaultHeads

    @Option(help: "The classifier judge's fine-tuned harm classifier.")
    var classifier: String = HarmClassifier.defaultPath

    /// Its 'backends' name the judge.
    @OptionGroup var pipelineOptions: PipelineOptions

    @Option(help: "The builtin detector's lexicon.")
    var lexicon: String = Lexicon.defaultPath

    @Option(help: "The builtin detector's leak score threshold.")
    var threshold: Double = 1.0

    @Option(help: "Fewer content words than this is meaningless (builtin).")
    var minContentWords: Int = 2

    @Option(help: "The folder of the judge's prompt (audit.prompt).")
    var templates: String = "stages/detect"

    @Option(help: "The request cache of the LLM judge.")
    var cache: String = "out/cache"

    public init() {}

    /// The detector settings of the offline judges (`builtin`, `embedding`, `classifier`).
    func detectorSettings() -> DetectorSettings {
        var settings = DetectorSettings(kind: judge == "classifier" ? .classifier : judge == "embedding" ? .embedding : .lexicon)
        settings.lexicon = projectFile(lexicon)
        settings.minContentWords = minContentWords
        settings.threshold = threshold
        settings.model = projectFile(model)
        settings.heads = projectFile(heads)
        settings.classifier = projectFile(classifier)
        settings.taxonomy = projectFile(DetectorSettings.defaultTaxonomy)
        return settings
    }

    /// The builtin lexical detector, when it is the judge: the audit then tokenises each query once.
    func lexicalDetector() throws -> LexicalDetector? {
        guard judge == "builtin" else { return nil }
        return try detectorSettings().lexical()
    }

    /// The API key variables the judge's backend reads (passed to Slurm jobs).
    func apiKeyVariables() -> [String] {
        guard !["builtin", "embedding", "classifier"].contains(judge), let config = try? pipelineOptions.config(),
            let backend = config.backends[judge]
        else { return [] }
        let variable = backend.typed.apiKeyEnv
        return variable.isEmpty ? [] : [variable]
    }

    /// A function from items to findings, and the judge's name for the report.
    func make(work: String, images: String?) throws -> (String, ([AuditItem]) throws -> ([AuditFinding], [(AuditItem, String)])) {
        if judge == "builtin" {
            let chosen = try detectorSettings().lexical()
            return ("builtin lexical detector (\(lexicon), threshold \(threshold))", { (AuditJudge.builtin($0, detector: chosen), []) })
        }
        if judge == "embedding" || judge == "classifier" {
            guard SentenceEmbedder.available(in: projectFile(model)) else {
                throw ValidationError("the embedding model is not in \(model): run ./scripts/setup (or use '--judge builtin')")
            }
            guard let detector = try detectorSettings().learned() else { throw ValidationError("no learned detector for '--judge \(judge)'") }
            let name = detector.classifier == nil ? "embedding heads (\(heads)) on \(FileSystem.lastComponent(of: model))"
                : "fine-tuned harm classifier (\(classifier)) with the lexicon, and the leak head (\(heads))"
            return (name, { (AuditJudge.embedding($0, detector: detector), []) })
        }
        let config = try pipelineOptions.config()
        if let reference = config.backends[judge], [BackendKind.llamaGuard.name, BackendKind.openAIModeration.name].contains(reference.kind) {
            return ("\(reference.kind) '\(judge)' (\(reference.string("model")))", { items in
                try ReferenceJudge.audit(items, backend: reference, cache: cache, images: images)
            })
        }
        let backend = try chatBackend(judge, option: "judge", in: config)
        var run = 0
        return ("LLM judge '\(judge)' (\(backend.typed.model))", { items in
            run += 1
            return try AuditJudge.model(items, backend: backend, templates: projectFile(templates), cache: cache, work: FileSystem.join(work, "judge-\(run)"), images: images)
        })
    }
}

public struct AuditCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Audit another benchmark for visual safety information leakage: verdicts per query, rates per category, leaking terms, empty and duplicate queries; writes JSON, Markdown and HTML.")

    @Argument(help: "The benchmark file (a folder of scenario files for mmsafetybench).")
    var file: String

    @Option(help: "Its format: \(BenchmarkFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: BenchmarkFormat

    @Option(help: "Read the query from this field instead of the format's default.")
    var queryField: String?

    @Option(help: "jsonl: fields as TARGET=FIELD pairs, comma-separated (targets: query, description, key_phrase, caption, category, sub_category, image, id, label).")
    var map: String?

    @Option(help: "The benchmark's image folder: an LLM judge is shown each image it finds there.")
    var images: String?

    @Option(help: "The folder to write audit.json, audit.md and audit.html (default out/audit/<file name>).")
    var output: String?

    @OptionGroup var judgeOptions: JudgeOptions

    /// The judge: the fine-tuned harm classifier unless --judge names another (it measures better
    /// than the lexicon held out by source; README, The harm classifier).
    var judging: JudgeOptions {
        var options = judgeOptions
        if options.chosenJudge == nil { options.chosenJudge = "classifier" }
        return options
    }

    @Option(help: "Where to judge: local, or slurm (the benchmark split into --tasks shards, each a Slurm array task, then merged: the same audit.jsonl).")
    var executor: ExecutorSettings.Kind = .local

    @Option(help: "With --executor slurm: shards (array tasks).")
    var tasks: Int = 2

    @Option(help: "With --executor slurm: at most this many shards at once (0: no limit).")
    var maxParallel: Int = 0

    @Option(help: .hidden)
    var shard: Int?

    @Option(help: .hidden)
    var shards: Int?

    public init() {}

    public func validate() throws {
        if map != nil && format != .jsonl { throw ValidationError("'--map' is only valid with '--format jsonl'") }
        if !(1...100_000).contains(tasks) { throw ValidationError("'--tasks' must be from 1 to 100000, found \(tasks)") }
        if maxParallel < 0 { throw ValidationError("'--max-parallel' must be 0 or more, found \(maxParallel)") }
        if (shard == nil) != (shards == nil) { throw ValidationError("'--shard' and '--shards' go together") }
        if let shard, let shards, !(0..<shards).contains(shard) { throw ValidationError("'--shard' must be from 0 to \(shards - 1)") }
    }

    public func run() throws {
        try reportingErrors {
            var mapping: [String: String] = [:]
            for pair in (map ?? "").split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw ValidationError("'--map': expected TARGET=FIELD, found '\(pair)'") }
                mapping[parts[0]] = parts[1]
            }
            let options = ImportOptions(queryField: queryField, mapping: mapping)
            let name = FileSystem.lastComponent(of: file).replacingOccurrences(of: ".json", with: "")
            let folder = output ?? FileSystem.join("out/audit", name)
            let (judgeName, judge) = try judging.make(work: FileSystem.join(folder, "work"), images: images)
            let lexical = try judging.lexicalDetector()
            let batchSize = judging.judge == "builtin" ? 8_192 : ["embedding", "classifier"].contains(judging.judge) ? 1_024 : 256
            let title = "\(file) (\(format.rawValue))"
            if let shard, let shards {
                // One array task of an audit on Slurm: its part only.
                try AuditRun.runShard(file: file, format: format, options: options, folder: folder, judgeName: judgeName, judge: judge,
                                      lexical: lexical, batchSize: batchSize, shard: try ShardSpec(index: shard, count: shards))
                return
            }
            let report: AuditReport
            if executor == .slurm {
                try submitShards(folder: folder, judgeName: judgeName)
                report = try AuditRun.merge(file: file, format: format, options: options, folder: folder, title: title, judgeName: judgeName, shards: tasks)
            } else {
                report = try AuditRun.run(
                    file: file, format: format, options: options, folder: folder, title: title, judgeName: judgeName,
                    judge: judge, lexical: lexical, batchSize: batchSize)
            }
            try report.write(to: folder)
            let all = report.overall
            print("\(report.records) records: " + LexicalVerdict.Verdict.allCases.map { "\($0.rawValue) \(all.byVerdict[$0] ?? 0)" }.joined(separator: ", ")
                + "; flagged \(String(format1: all.flaggedRate * 100, digits: 1))%")
            print("\(report.distinctQueries) distinct queries, \(report.emptyQueryCount) empty, \(report.duplicateGroupCount) repeated (\(report.duplicateExtraCopies) extra copies)")
            if !report.unjudged.isEmpty { print("\(report.unjudged.count) not judged (each with its reason in \(folder)/audit.jsonl)") }
            print("written to \(folder)/audit.jsonl, audit.json, audit.md, audit.html")
        }
    }
}

extension AuditCommand {
    /// Judges the benchmark as a Slurm job array of `tasks` shards (this command again, with
    /// `--shard`), resubmitting a failed shard alone, and waits for them; shards already judged
    /// are not submitted again.
    func submitShards(folder: String, judgeName: String) throws {
        let absoluteFolder = folder.hasPrefix("/") ? folder : FileSystem.join(FileManager.default.currentDirectoryPath, folder)
        // This command's own arguments, without the executor's and with the output made absolute.
        var arguments: [String] = []
        var given = Array(CommandLine.arguments.dropFirst())
        if let first = given.first, first == "audit" { given.removeFirst() }
        var index = 0
        while index < given.count {
            let argument = given[index]
            let name = String(argument.split(separator: "=", maxSplits: 1).first ?? "")
            if ["--executor", "--tasks", "--max-parallel", "--output"].contains(name) {
                index += argument.contains("=") ? 1 : 2
                continue
            }
            arguments.append(argument)
            index += 1
        }
        var settings = ExecutorSettings()
        settings.kind = .slurm
        settings.tasks = tasks
        settings.maxParallel = maxParallel
        let command = [FileSystem.join(executableFolder(), "leakless"), "audit"] + arguments
            + ["--output", absoluteFolder, "--shard", "$SLURM_ARRAY_TASK_ID", "--shards", String(tasks)]
        let isComplete: (Int) -> Bool = { AuditRun.isShardDone(folder: absoluteFolder, index: $0, count: tasks, judgeName: judgeName) }
        try SlurmAudit.run(folder: absoluteFolder, settings: settings, command: command, apiKeys: judging.apiKeyVariables(), isComplete: isComplete)
    }
}

public struct DetectorQualityCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "detector-quality",
        abstract: "Measure the VSIL detector on the development benchmarks: flagged share per query set against its goal, precision, recall and confusion; prints a table and writes it to a file.")

    @Option(help: "The folder of the development benchmarks (vlsbench/, mm-safetybench/, vlguard/).")
    var benchmarks: String = "../shared/benchmarks"

    @Option(help: "Where to write the figures (JSON; the table goes beside it as .md).")
    var output: String?

    @OptionGroup var judging: JudgeOptions

    public init() {}

    public func run() throws {
        try reportingErrors {
            let sets = try DetectorQuality.standardSets(benchmarks: benchmarks)
            let target = output ?? "bench/detector-quality-\(judging.judge).json"
            let (judgeName, judge) = try judging.make(work: FileSystem.join("out/detector-quality", judging.judge), images: nil)
            let result = try DetectorQuality.evaluate(sets, judgeName: judgeName) { try judge($0).0 }
            let table = DetectorQuality.markdown(result)
            print(table, terminator: "")
            try FileSystem.createDirectory(FileSystem.parent(of: target))
            try AtomicFile.write(Array(JSONWriter.pretty(DetectorQuality.json(result)).utf8), to: target)
            let markdownPath = target.hasSuffix(".json") ? String(target.dropLast(5)) + ".md" : target + ".md"
            try AtomicFile.write(Array(table.utf8), to: markdownPath)
            print("written to \(target) and \(markdownPath)")
        }
    }
}
