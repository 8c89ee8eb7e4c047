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
        /// The query set it is measured in.
        public var set: String = ""
    }

    public static let benchmarks = ["vlsbench", "mm-safetybench", "vlguard", "lvlm-safer"]

    /// Every example, in a fixed order.
    public static func examples(benchmarks folder: String, project: String) throws -> [Example] {
        var examples: [Example] = []
        func add(_ text: String?, context: String? = nil, harmful: Bool?, leaks: Bool?, _ source: String, set: String) {
            guard let text = text?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else { return }
            examples.append(Example(text: text, context: context, harmful: harmful, leaks: leaks, source: source, set: set))
        }
        // VLSBench: leak-free instructions, written to carry no risk alone; with their image's description.
        for item in try BenchmarkImporter.read(FileSystem.join(folder, "vlsbench/data.json"), format: .vlsbench) {
            add(item.query, context: item.description, harmful: false, leaks: item.description == nil ? nil : false, "vlsbench", set: "VLSBench instruction")
        }
        // MM-SafetyBench: the harmful questions name their key phrase; the rephrased ones point at the image.
        let mm = FileSystem.join(folder, "mm-safetybench")
        for field in ["Question", "Rephrased Question", "Rephrased Question(SD)"] {
            for item in try BenchmarkImporter.read(mm, format: .mmsafetybench, options: ImportOptions(queryField: field)) {
                let harmfulScenario = DetectorQuality.harmfulScenarios.contains(String((item.category ?? "").prefix(2)))
                if field == "Question" {
                    guard harmfulScenario else {
                        // Sensitive advice: neither label fits; measured only.
                        add(item.query, harmful: nil, leaks: nil, "mm-safetybench", set: "MM-SafetyBench Question, scenarios 08 and 10-13")
                        continue
                    }
                    add(item.query, context: item.keyPhrase, harmful: true, leaks: true, "mm-safetybench", set: "MM-SafetyBench Question, 01-07 and 09")
                } else {
                    add(item.query, context: item.keyPhrase, harmful: false, leaks: false, "mm-safetybench", set: "MM-SafetyBench \(field)")
                }
            }
        }
        // VLGuard: unsafe instructions for safe images are harmful alone, safe instructions are
        // not. The instructions for unsafe images ("how to modify this weapon ...") are labelled
        // neither way, so they teach nothing.
        for file in ["test.json", "train.json"] {
            let path = FileSystem.join(folder, "vlguard", file)
            guard FileSystem.exists(path) else { continue }
            for item in try BenchmarkImporter.read(path, format: .vlguard) {
                switch item.label {
                case "harmful": add(item.query, harmful: true, leaks: nil, "vlguard", set: "VLGuard unsafe_instruction (safe images)")
                case "clean": add(item.query, harmful: false, leaks: nil, "vlguard", set: "VLGuard safe_instruction (safe images)")
                default: add(item.query, harmful: nil, leaks: nil, "vlguard", set: "VLGuard instruction (unsafe images)")
                }
            }
        }
        // LVLM-SafeR: the safe questions are harmless as text. Its ambiguous prompts ("How do I
        // make hash at home?") mean harm or not by the image, so they are left out.
        let safer = FileSystem.join(folder, "lvlm-safer")
        if FileSystem.isDirectory(safer) {
            for file in try FileSystem.files(under: safer).sorted() where file.hasSuffix(".json") {
                for record in try JSONParser.parse(bytes: try FileSystem.read(FileSystem.join(safer, file))).arrayValue ?? [] {
                    add(record["safe_pair"]?["question"]?.stringValue, harmful: false, leaks: nil, "lvlm-safer", set: "LVLM-SafeR safe question")
                    add(record["prompt"]?.stringValue, harmful: nil, leaks: nil, "lvlm-safer", set: "LVLM-SafeR ambiguous prompt")
                }
            }
        }
        // MM-HarmfulBench's questions lean on their picture: harmful with it, measured only.
        let harmfulBench = FileSystem.join(folder, "mm-harmfulbench/questions.jsonl")
        if FileSystem.exists(harmfulBench) {
            for item in try BenchmarkImporter.read(harmfulBench, format: .jsonl, options: ImportOptions(mapping: ["query": "question"])) {
                add(item.query, harmful: nil, leaks: nil, "mm-harmfulbench", set: "MM-HarmfulBench question")
            }
        }
        // The project's own everyday requests: harmless, and standing alone like the seeds.
        for text in try everydayRequests(path: FileSystem.join(project, "data/detector/everyday.yaml")) {
            add(text, harmful: false, leaks: nil, "everyday", set: "Everyday requests")
        }
        // The project's own contrasts: harmless requests about harmful topics, and harmless senses
        // of alarming words.
        let contrasts = FileSystem.join(project, "data/detector/contrasts.yaml")
        if FileSystem.exists(contrasts) {
            for text in try contrastRequests(path: contrasts, taxonomy: try Taxonomy.load(path: FileSystem.join(project, "data/taxonomy.yaml"))) {
                add(text, harmful: false, leaks: nil, "contrasts", set: "Contrasts")
            }
        }
        // The project's own: builtin seeds name their element and ask for harm; the rewrites the
        // lexicon passes point at the image instead.
        for (seed, rewrites) in try projectSeeds(project: project) {
            add(seed.string("query"), context: seed.string("image_description"), harmful: true, leaks: true, "project", set: "Builtin seeds")
            for rewrite in rewrites {
                add(rewrite.string("query"), context: rewrite.string("image_description"), harmful: false, leaks: false, "project", set: "Builtin rewrites")
            }
        }
        return examples
    }

    /// The everyday requests of `path`: each activity, thing and topic in two of its templates
    /// ("{}" stands for it), the templates taken in turn.
    public static func everydayRequests(path: String) throws -> [String] {
        let document = try YAMLDocument.load(path: path)
        func list(_ key: String) throws -> [String] {
            guard let node = document[key], let values = node.json.stringArray, !values.isEmpty else {
                throw LocatedError(path: path, line: document[key]?.line, message: "'\(key)' needs a list of strings")
            }
            return values
        }
        var requests: [String] = []
        var turn = 0
        for (templatesKey, subjectsKey) in [("activity_templates", "activities"), ("thing_templates", "things"), ("topic_templates", "topics")] {
            let templates = try list(templatesKey)
            if let bad = templates.first(where: { !$0.contains("{}") }) {
                throw LocatedError(path: path, line: document[templatesKey]?.line, message: "the template '\(bad)' has no '{}'")
            }
            for subject in try list(subjectsKey) {
                for _ in 0..<min(2, templates.count) {
                    requests.append(templates[turn % templates.count].replacingOccurrences(of: "{}", with: subject))
                    turn += 1
                }
            }
        }
        return requests
    }

    /// The harmless contrasts of `path`: each harmful element of the taxonomy in two of the topic
    /// templates, taken in turn, then the requests as they are.
    public static func contrastRequests(path: String, taxonomy: Taxonomy) throws -> [String] {
        let document = try YAMLDocument.load(path: path)
        guard let templates = document["topic_templates"]?.json.stringArray, !templates.isEmpty else {
            throw LocatedError(path: path, line: document["topic_templates"]?.line, message: "'topic_templates' needs a list of strings")
        }
        if let bad = templates.first(where: { !$0.contains("{}") }) {
            throw LocatedError(path: path, line: document["topic_templates"]?.line, message: "the template '\(bad)' has no '{}'")
        }
        guard let requests = document["requests"]?.json.stringArray else {
            throw LocatedError(path: path, line: document["requests"]?.line, message: "'requests' needs a list of strings")
        }
        var result: [String] = []
        var turn = 0
        for category in taxonomy.categories {
            for sub in category.subCategories {
                for element in sub.elements {
                    for _ in 0..<min(2, templates.count) {
                        result.append(templates[turn % templates.count].replacingOccurrences(of: "{}", with: element.name))
                        turn += 1
                    }
                }
            }
        }
        return result + requests
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
            "detector": "lexicon", "lexicon": .string(FileSystem.join(project, Lexicon.defaultPath)),
        ])
        // A kept record's parent is its rewrite; the rewrite's parent is the seed.
        let keptRewrites = Set(kept.compactMap { $0.parents.first })
        let byParent = Dictionary(grouping: rewrites.filter { keptRewrites.contains($0.id) }) { $0.parents.first ?? "" }
        return seeds.map { ($0, byParent[$0.id] ?? []) }
    }

    /// The two heads trained on `examples` (already embedded: `vectors[text]`).
    ///
    /// The harm head is trained blind to each benchmark's style: every benchmark has its own
    /// way of asking (MM-SafetyBench's templates, VLGuard's questions about a picture), and a
    /// head that sees it learns "harmful looks like benchmark A", which says nothing on a
    /// benchmark it never saw. So the directions in which a benchmark's examples of one label
    /// differ on average from all examples of that label are projected out of the training
    /// vectors (`styleBasis`), and then out of the learned weights, so the head is still a plain
    /// logistic regression on the embedding.
    ///
    /// Each head's threshold is the lowest probability (0.5 at least) at which no training
    /// benchmark has more than `cleanRate` of its clean examples flagged: the threshold aims at a
    /// false-positive rate, not at the balance of the training classes.
    public static func train(_ examples: [Example], vectors: [String: [Float]]) -> Heads {
        var harmFeatures: [[Float]] = [], harmLabels: [Bool] = [], harmSources: [String] = []
        var leakFeatures: [[Float]] = [], leakLabels: [Bool] = [], leakSources: [String] = []
        for example in examples {
            guard let query = vectors[example.text] else { continue }
            if let harmful = example.harmful {
                harmFeatures.append(query)
                harmLabels.append(harmful)
                harmSources.append(example.source)
            }
            if let leaks = example.leaks, let context = example.context, let image = vectors[context] {
                leakFeatures.append(EmbeddingDetector.pairFeatures(query, image))
                leakLabels.append(leaks)
                leakSources.append(example.source)
            }
        }
        let basis = styleBasis(harmFeatures, labels: harmLabels, sources: harmSources)
        let projected = harmFeatures.map { project($0, outOf: basis) }
        var harm = LogisticHead.train(projected, labels: harmLabels)
        harm.weights = project(harm.weights, outOf: basis)
        let leak = LogisticHead.train(leakFeatures, labels: leakLabels)
        return Heads(
            harm: harm, leak: leak,
            harmThreshold: threshold(harmFeatures.map(harm.probability), labels: harmLabels, sources: harmSources),
            leakThreshold: threshold(leakFeatures.map(leak.probability), labels: leakLabels, sources: leakSources))
    }

    /// The largest share of a training benchmark's clean examples a head may flag.
    public static let cleanRate = 0.02

    /// The lowest threshold, 0.5 at least, that flags at most `rate` of the clean examples
    /// (label false) of each source with at least `minimum` of them.
    public static func threshold(_ probabilities: [Float], labels: [Bool], sources: [String], rate: Double = cleanRate, minimum: Int = 20) -> Float {
        var threshold: Float = 0.5
        let clean = Dictionary(grouping: labels.indices.filter { !labels[$0] }) { sources[$0] }
        for (_, rows) in clean where rows.count >= minimum {
            let descending = rows.map { probabilities[$0] }.sorted(by: >)
            let allowed = min(Int((rate * Double(descending.count)).rounded(.down)), descending.count - 1)
            // Above the (allowed+1)-th highest clean probability: at most `allowed` reach it.
            threshold = max(threshold, descending[allowed].nextUp)
        }
        return min(threshold, 1)
    }

    /// An orthonormal basis of the benchmarks' styles: for each label, each source's mean vector
    /// minus the mean of all vectors with that label (sources with at least `minimum` such
    /// examples), orthonormalised in a fixed order (Gram-Schmidt, twice for stability).
    public static func styleBasis(_ features: [[Float]], labels: [Bool], sources: [String], minimum: Int = 20) -> [[Float]] {
        guard let dimension = features.first?.count else { return [] }
        func mean(_ rows: [Int]) -> [Double] {
            var sum = [Double](repeating: 0, count: dimension)
            for row in rows { for i in 0..<dimension { sum[i] += Double(features[row][i]) } }
            return sum.map { $0 / Double(max(rows.count, 1)) }
        }
        var directions: [[Double]] = []
        for label in [true, false] {
            let rows = labels.indices.filter { labels[$0] == label }
            guard !rows.isEmpty else { continue }
            let all = mean(rows)
            let bySource = Dictionary(grouping: rows) { sources[$0] }
            for source in bySource.keys.sorted() where bySource[source]!.count >= minimum {
                directions.append(zip(mean(bySource[source]!), all).map { $0 - $1 })
            }
        }
        var basis: [[Double]] = []
        for var direction in directions {
            let length = sqrt(direction.reduce(0) { $0 + $1 * $1 })
            for _ in 0..<2 {
                for unit in basis {
                    let dot = zip(direction, unit).reduce(0) { $0 + $1.0 * $1.1 }
                    for i in 0..<dimension { direction[i] -= dot * unit[i] }
                }
            }
            let rest = sqrt(direction.reduce(0) { $0 + $1 * $1 })
            // What is left of a direction the others already span is rounding, not style.
            guard rest > 1e-6 * max(length, 1e-12), rest > 0 else { continue }
            basis.append(direction.map { $0 / rest })
        }
        return basis.map { $0.map(Float.init) }
    }

    /// `vector` minus its components along the orthonormal `basis`.
    public static func project(_ vector: [Float], outOf basis: [[Float]]) -> [Float] {
        var result = vector.map(Double.init)
        for unit in basis {
            var dot = 0.0
            for i in 0..<result.count { dot += result[i] * Double(unit[i]) }
            for i in 0..<result.count { result[i] -= dot * Double(unit[i]) }
        }
        return result.map(Float.init)
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
            let made = detector(train(examples.filter { key.isEmpty || $0.source != key }, vectors: vectors))
            trained[key] = made
            return made
        }
        return DetectorQuality.evaluate(sets, judgeName: "embedding heads, leave-one-benchmark-out") { (set: DetectorQuality.QuerySet) in
            AuditJudge.embedding(set.items, detector: detectorWithout(set.source), known: vectors)
        }
    }

    public typealias Heads = EmbeddingDetector.Heads
}
