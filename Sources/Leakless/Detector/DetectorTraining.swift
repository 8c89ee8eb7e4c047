import Foundation
import LeaklessCore
import LeaklessEmbedding

/// What the detector's two heads learn from: labelled texts of the development benchmarks
/// (`../shared/benchmarks`) and the project's own generated seeds and rewrites. Nothing else.
public enum DetectorTraining {
    /// One labelled example. `harmful`: the text alone is an unsafe request (nil: not used for
    /// that head). `leaks`: with `context` (what the image shows), the text names it.
    public struct Example: Sendable {
        public let text: String
        public let context: String?
        public let harmful: Bool?
        public let leaks: Bool?
        /// The benchmark it came from ("project" for the generated ones).
        public let source: String
    }

    public static let benchmarks = ["vlsbench", "mm-safetybench", "vlguard", "lvlm-safer"]

    /// Every example, in a fixed order.
    public static func examples(benchmarks folder: String, project: String) throws -> [Example] {
        var examples: [Example] = []
        func add(_ text: String?, context: String? = nil, harmful: Bool?, leaks: Bool?, _ source: String) {
            guard let text = text?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else { return }
            examples.append(Example(text: text, context: context, harmful: harmful, leaks: leaks, source: source))
        }
        // VLSBench: leak-free instructions, written to carry no risk alone; with their image's description.
        for item in try BenchmarkImporter.read(FileSystem.join(folder, "vlsbench/data.json"), format: .vlsbench) {
            add(item.query, context: item.description, harmful: false, leaks: item.description == nil ? nil : false, "vlsbench")
        }
        // MM-SafetyBench: the harmful questions name their key phrase; the rephrased ones point at the image.
        let mm = FileSystem.join(folder, "mm-safetybench")
        for field in ["Question", "Rephrased Question", "Rephrased Question(SD)"] {
            for item in try BenchmarkImporter.read(mm, format: .mmsafetybench, options: ImportOptions(queryField: field)) {
                let harmfulScenario = DetectorQuality.harmfulScenarios.contains(String((item.category ?? "").prefix(2)))
                if field == "Question" {
                    guard harmfulScenario else { continue }  // sensitive advice: neither label fits
                    add(item.query, context: item.keyPhrase, harmful: true, leaks: true, "mm-safetybench")
                } else {
                    add(item.query, context: item.keyPhrase, harmful: false, leaks: false, "mm-safetybench")
                }
            }
        }
        // VLGuard: unsafe instructions for safe images are harmful alone; the others are not.
        for file in ["test.json", "train.json"] {
            let path = FileSystem.join(folder, "vlguard", file)
            guard FileSystem.exists(path) else { continue }
            for item in try BenchmarkImporter.read(path, format: .vlguard) {
                add(item.query, harmful: item.label == "harmful", leaks: nil, "vlguard")
            }
        }
        // LVLM-SafeR: ambiguous prompts and safe questions, harmless as text.
        let safer = FileSystem.join(folder, "lvlm-safer")
        if FileSystem.isDirectory(safer) {
            for file in try FileSystem.files(under: safer).sorted() where file.hasSuffix(".json") {
                for record in try JSONParser.parse(bytes: try FileSystem.read(FileSystem.join(safer, file))).arrayValue ?? [] {
                    add(record["prompt"]?.stringValue, harmful: false, leaks: nil, "lvlm-safer")
                    add(record["safe_pair"]?["question"]?.stringValue, harmful: false, leaks: nil, "lvlm-safer")
                }
            }
        }
        // The project's own: builtin seeds name their element and ask for harm; the rewrites the
        // lexicon passes point at the image instead.
        for (seed, rewrites) in try projectSeeds(project: project) {
            add(seed.string("query"), context: seed.string("image_description"), harmful: true, leaks: true, "project")
            for rewrite in rewrites {
                add(rewrite.string("query"), context: rewrite.string("image_description"), harmful: false, leaks: false, "project")
            }
        }
        return examples
    }

    /// The builtin extract's seeds over the project's taxonomy, each with its rewrites that the
    /// lexical detector keeps, made in memory.
    static func projectSeeds(project: String) throws -> [(Record, [Record])] {
        func run(_ stage: String, input: String, records: [Record]? = nil, parameters: [String: JSONValue] = [:]) throws -> [Record] {
            let work = FileSystem.join(NSTemporaryDirectory(), "leakless-train-\(getpid())-\(stage).jsonl")
            defer { try? FileSystem.remove(work) }
            var source = input
            if let records {
                try AtomicFile.write(records.map { JSONWriter.canonical($0.json) + "\n" }.joined(), to: work)
                source = work
            }
            let sink = MemorySink()
            try StageRegistry.run(StageRunRequest(
                stage: stage, input: source, output: "", rejects: "", stats: nil, folder: nil,
                templates: FileSystem.join(project, "stages", stage), blobs: "", cache: "", parameters: parameters), sink: sink)
            return sink.records
        }
        let seeds = try run("extract", input: FileSystem.join(project, "data/taxonomy.yaml"), parameters: ["queries_per_element": 20])
        let rewrites = try run("rewrite", input: "", records: seeds)
        let kept = try run("detect", input: "", records: rewrites, parameters: [
            "detector": "lexicon", "lexicon": .string(FileSystem.join(project, "data/lexicon.yaml")),
        ])
        // A kept record's parent is its rewrite; the rewrite's parent is the seed.
        let keptRewrites = Set(kept.compactMap { $0.parents.first })
        let byParent = Dictionary(grouping: rewrites.filter { keptRewrites.contains($0.id) }) { $0.parents.first ?? "" }
        return seeds.map { ($0, byParent[$0.id] ?? []) }
    }

    /// The two heads trained on `examples` (already embedded: `vectors[text]`).
    public static func train(_ examples: [Example], vectors: [String: [Float]]) -> (harm: LogisticHead, leak: LogisticHead) {
        var harmFeatures: [[Float]] = [], harmLabels: [Bool] = []
        var leakFeatures: [[Float]] = [], leakLabels: [Bool] = []
        for example in examples {
            guard let query = vectors[example.text] else { continue }
            if let harmful = example.harmful {
                harmFeatures.append(query)
                harmLabels.append(harmful)
            }
            if let leaks = example.leaks, let context = example.context, let image = vectors[context] {
                leakFeatures.append(EmbeddingDetector.pairFeatures(query, image))
                leakLabels.append(leaks)
            }
        }
        return (LogisticHead.train(harmFeatures, labels: harmLabels), LogisticHead.train(leakFeatures, labels: leakLabels))
    }

    /// Every text and context of the examples, embedded once.
    public static func embed(_ examples: [Example], with embedder: SentenceEmbedder) -> [String: [Float]] {
        var texts: [String] = []
        var seen = Set<String>()
        for example in examples {
            for text in [example.text, example.context].compactMap({ $0 }) where seen.insert(text).inserted { texts.append(text) }
        }
        let progress = Progress(label: "embed")
        let total = texts.count
        let vectors = embedder.embed(texts) { done in progress.tick("\(done) of \(total) texts") }
        progress.finish("\(texts.count) texts")
        return Dictionary(uniqueKeysWithValues: zip(texts, vectors))
    }

    /// Each query set judged by heads trained without its benchmark's examples (sets of a
    /// benchmark never trained on, by heads trained on everything).
    public static func leaveOneBenchmarkOut(
        _ examples: [Example], vectors: [String: [Float]], sets: [DetectorQuality.QuerySet], detector: (Heads) -> EmbeddingDetector
    ) -> DetectorQuality.Result {
        var trained: [String: EmbeddingDetector] = [:]
        func detectorWithout(_ source: String?) -> EmbeddingDetector {
            let key = source.flatMap { benchmarks.contains($0) ? $0 : nil } ?? ""
            if let known = trained[key] { return known }
            let (harm, leak) = train(examples.filter { key.isEmpty || $0.source != key }, vectors: vectors)
            let made = detector(Heads(harm: harm, leak: leak))
            trained[key] = made
            return made
        }
        return DetectorQuality.evaluate(sets, judgeName: "embedding heads, leave-one-benchmark-out") { (set: DetectorQuality.QuerySet) in
            AuditJudge.embedding(set.items, detector: detectorWithout(set.source), known: vectors)
        }
    }

    public typealias Heads = EmbeddingDetector.Heads
}
