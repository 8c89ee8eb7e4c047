import Foundation
import LeaklessCore
import LeaklessEmbedding

/// select: from a pool of pairs larger than the benchmark, the `size` pairs that best tell the
/// evaluated models apart, stay harmful and stay diverse (see `SubsetSelection`), under
/// per-category quotas. It reads the per-pair labels of `leakless eval` runs on the pool's export
/// (matched by pair id through its provenance.jsonl); pairs no model was evaluated on are left
/// out as `not-evaluated`. Optional: a pipeline without it exports the whole pool.
public enum SelectStage: PipelineStage {
    static let weightFields = [
        StageParameter("discrimination", .number(0...1_000), default: 1.0, "how well a pair tells the models apart"),
        StageParameter("diversity", .number(0...1_000), default: 0.5, "coverage of the pool's meaning (embeddings of query and description)"),
        StageParameter("images", .number(0...1_000), default: 0.5, "a pair whose image no chosen pair shows yet"),
        StageParameter("harmfulness", .number(0...1_000), default: 0.25, "the share of models whose reply with the image was unsafe"),
        StageParameter("visual_dependence", .number(0...1_000), default: 0.25, "safer with the image than without it (eval --image-blind)"),
    ]

    public static let definition = StageDefinition(
        name: "select", version: 1,
        summary: "keeps the pairs that best separate the evaluated models (item response theory), stay harmful and stay diverse, under category quotas",
        input: .records(["pair"]), output: .records("pair"),
        sharding: .whole(why: "the subset is chosen from every pair at once"),
        parameters: StageParameter.declared(in: Parameters()))

    public struct Weights: Decodable, Sendable {
        public var discrimination: Double
        public var diversity: Double
        public var images: Double
        public var harmfulness: Double
        public var visualDependence: Double
    }

    public struct Parameters: Decodable, Sendable {
        @Parameter("evaluations", .path, default: "out/eval/eval.json", "the eval.json of leakless eval on the pool's export, or a folder of them")
        public var evaluations: String
        @Parameter("size", .integer(1...10_000_000), default: 2000, "pairs to keep")
        public var size: Int
        @Parameter("quota", .choice(of: QuotaChoice.self), default: "proportional",
                   "each category's share: as in the pool, the same for each, or quota_table")
        public var quota: QuotaChoice
        @Parameter("quota_table", .counts(0...10_000_000), default: [:], "with quota: table, each category's count (summing to size)")
        public var quotaTable: [String: Int]
        @Parameter("weights", .mapping(weightFields), default: .object(Dictionary(uniqueKeysWithValues: weightFields.map { ($0.name, $0.defaultValue) })),
                   "how much each criterion counts")
        public var weights: Weights
        @Parameter("method", .choice(of: ItemStatisticsMethod.self), default: "auto",
                   "item statistics: irt (two-parameter logistic), item_total (item-rest correlation), or auto (irt from 8 models)")
        public var method: ItemStatisticsMethod
        @Parameter("seed", .integer(0...Int64(Int32.max)), default: 1, "the seed of the diversity sample, ties and the bootstrap")
        public var seed: Int64
        @Parameter("diversity_sample", .integer(1...100_000), default: 512, "pairs of the pool whose coverage the diversity term measures")
        public var diversitySample: Int
        @Parameter("model", .optionalPath, default: .string(SentenceEmbedder.defaultFolder), "the sentence-embedding model folder (for diversity)")
        public var model: String

        var settings: SelectionSettings {
            var settings = SelectionSettings(size: size)
            settings.quota = quota == .table ? .table(quotaTable) : quota == .equal ? .equal : .proportional
            settings.weights.discrimination = weights.discrimination
            settings.weights.diversity = weights.diversity
            settings.weights.images = weights.images
            settings.weights.harmfulness = weights.harmfulness
            settings.weights.visualDependence = weights.visualDependence
            settings.method = method
            settings.seed = seed
            settings.diversitySample = diversitySample
            return settings
        }
    }

    public static func validate(_ parameters: Parameters) throws {
        if parameters.quota == .table && parameters.quotaTable.isEmpty {
            throw RecordError("quota: table needs 'quota_table' (each category's count)")
        }
        if parameters.quota != .table && !parameters.quotaTable.isEmpty {
            throw RecordError("'quota_table' is read only with quota: table (quota is '\(parameters.quota.rawValue)')")
        }
        if parameters.quota == .table, parameters.quotaTable.values.reduce(0, +) != parameters.size {
            throw RecordError("the quota table asks for \(parameters.quotaTable.values.reduce(0, +)) pairs, not the size \(parameters.size)")
        }
        if parameters.weights.diversity > 0 && !SentenceEmbedder.available(in: parameters.model) {
            throw RecordError("weights.diversity needs the sentence-embedding model at \(parameters.model) (scripts/setup fetches it), or set it to 0")
        }
    }

    public static func implementation(_ parameters: Parameters, context: StageContext) throws -> StageImplementation {
        .twoPass(SelectPoolStage(parameters: parameters))
    }

    public static func provenance(of pair: Record) -> JSONValue? { pair["selection"] }
}

/// The select stage over the pool: every pair observed, the selection made once, then each pair
/// kept (with its item statistics and why) or left out with the reason.
struct SelectPoolStage: TwoPassStage {
    let parameters: SelectStage.Parameters
    var candidates: [SelectionCandidate] = []
    var texts: [String] = []
    var decisions: [String: Result<JSONValue, SelectionRejection>] = [:]
    var report: SelectionReport?

    struct SelectionRejection: Error {
        let reason: String
        let detail: String
    }

    init(parameters: SelectStage.Parameters) {
        self.parameters = parameters
    }

    mutating func observe(_ record: Record) throws {
        try record.requireKind(["pair"])
        let image = try record.requireObject("image")
        guard let blob = image["blob"]?.stringValue else { throw RecordError("field 'image' needs 'blob'") }
        candidates.append(SelectionCandidate(id: record.id, category: try record.requireString("category"), image: blob))
        texts.append(try record.requireString("query") + "\n" + (record.string("image_description") ?? ""))
    }

    mutating func decide() throws {
        let results = try EvaluationResults.load(files: try EvaluationResults.files(at: parameters.evaluations), key: .pair)
        let known = Set(candidates.map(\.id))
        let strangers = results.pairs.subtracting(known)
        if !strangers.isEmpty {
            throw LocatedError(
                path: parameters.evaluations, line: nil,
                message: "\(strangers.count) of the \(results.pairs.count) pairs evaluated are not in the pool the select stage reads (e.g. \(strangers.sorted().first!)): evaluate the export of this pipeline's pool")
        }
        let (responses, blind) = results.matrices(items: candidates.map(\.id))
        var settings = parameters.settings
        if blind == nil { settings.weights.visualDependence = 0 }
        if settings.weights.diversity > 0 {
            let embedder = try SentenceEmbedder(folder: parameters.model)
            let progress = Progress(label: "select")
            let total = texts.count
            let vectors = embedder.embed(texts) { done in progress.tick("embedding \(progress.rate(done: done, total: total))") }
            progress.finish("embedded \(total) pairs")
            for index in candidates.indices { candidates[index].embedding = vectors[index] }
        }
        var selection: SubsetSelection
        do {
            selection = try SubsetSelection(candidates: candidates, responses: responses, blind: blind, settings: settings)
        } catch let error as SelectionError {
            throw LocatedError(path: parameters.evaluations, line: nil, message: error.description)
        }
        let progress = Progress(label: "select")
        selection.run { progress.tick($0) }
        progress.finish("\(selection.selected.count) of \(candidates.count) pairs chosen (\(selection.method.rawValue))")
        for entry in selection.selected {
            var fields = selection.statistics[entry.item].json.objectValue ?? [:]
            fields["method"] = .string(selection.method.rawValue)
            fields["order"] = .int(Int64(entry.order + 1))
            fields["gains"] = .object(entry.gains.mapValues { .double($0.rounded(places: 4)) })
            let strongest = entry.gains.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.first?.key ?? "discrimination"
            fields["why"] = .string("chosen \(entry.order + 1) of \(selection.selected.count); its largest gain was \(strongest)")
            decisions[candidates[entry.item].id] = .success(.object(fields))
        }
        for (item, left) in selection.leftOut {
            decisions[candidates[item].id] = .failure(SelectionRejection(reason: left.reason, detail: left.detail))
        }
        report = SelectionReport(selection, quotaRule: parameters.quota.rawValue)
    }

    mutating func process(_ record: Record) throws -> [StageOutput] {
        switch decisions[record.id] {
        case .success(let selection): return [.record(record.derived { $0["selection"] = selection })]
        case .failure(let rejection): return [.reject(record, reason: rejection.reason, detail: rejection.detail)]
        case nil: return [.reject(record, reason: "not-evaluated", detail: "no model was evaluated on this pair")]
        }
    }

    var extraStats: [String: JSONValue] {
        guard let report else { return [:] }
        return ["selection": report.json]
    }
}

/// How the select stage shares its size among categories (see QuotaRule).
public enum QuotaChoice: String, Sendable, CaseIterable, Decodable {
    case proportional
    case equal
    case table
}

extension ItemStatisticsMethod: Decodable {}
