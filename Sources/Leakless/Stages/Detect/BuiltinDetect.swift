import LeaklessCore
import LeaklessEmbedding

/// detect, builtin: keeps the queries the detector calls clean; rejects leaking and
/// harmful-alone ones with their evidence (the words that name the risk, the heads'
/// probabilities and the nearest harmful concept), and meaningless ones with their count of
/// content words. The same detectors audit other benchmarks (`leakless audit`). The embedding
/// detector judges records in batches of `batch`, in order.
public struct BuiltinDetectStage: RecordStage {
    let detector: LexicalDetector
    let embedding: EmbeddingDetector?
    let useElementTerms: Bool
    let useDescription: Bool
    var pending: [Record] = []
    static let batch = 256

    public init(parameters: DetectStage.Parameters) throws {
        let settings = parameters.detectorSettings
        detector = try settings.lexical()
        embedding = try settings.learned()
        useElementTerms = parameters.elementTerms
        useDescription = parameters.descriptionOverlap
    }

    public mutating func process(_ record: Record) throws -> [StageOutput] {
        let (query, context) = try input(record)
        guard embedding != nil else { return output(record, detector.judge(query, context: context), method: "builtin-lexical") }
        pending.append(record)
        return pending.count >= Self.batch ? try flush() : []
    }

    public mutating func finish() throws -> [StageOutput] { try flush() }

    mutating func flush() throws -> [StageOutput] {
        guard let embedding, !pending.isEmpty else { return [] }
        let items = try pending.map { try input($0) }
        let verdicts = embedding.judge(items.map { ($0.0, $0.1) })
        defer { pending = [] }
        let method = embedding.classifier == nil ? "builtin-embedding" : "builtin-classifier"
        return zip(pending, verdicts).flatMap { output($0, $1, method: method) }
    }

    func input(_ record: Record) throws -> (String, DetectionContext) {
        try record.requireKind(["query"])
        let query = try record.requireString("query")
        var context = DetectionContext(elementTerms: useElementTerms ? try record.elementTerms().terms : [])
        if useDescription { context.description = record.string("image_description") ?? "" }
        return (query, context)
    }

    func output(_ record: Record, _ result: LexicalVerdict, method: String) -> [StageOutput] {
        switch result.verdict {
        case .leaks, .harmfulAlone:
            var words = result.evidence.map { $0.span.isEmpty ? "\($0.source): \($0.term)" : "'\($0.span)' (\($0.source): \($0.term))" }
            if let harm = result.harmProbability { words.insert("harm head \(String(format1: harm, digits: 2))", at: 0) }
            if let leak = result.leakProbability { words.insert("leak head \(String(format1: leak, digits: 2))", at: 1) }
            let what = result.verdict == .leaks ? "names the risk" : "asks for the harm in words alone"
            return [.reject(record, reason: result.verdict.rawValue, detail: "\(what): \(words.joined(separator: ", "))")]
        case .meaningless:
            return [.reject(record, reason: "meaningless",
                            detail: "\(result.contentWords) content word(s), fewer than \(detector.minContentWords)")]
        case .clean:
            return [.record(record.derived { fields in
                fields["kind"] = "query"
                var detection: [String: JSONValue] = [
                    "detector": .string(method), "verdict": "clean",
                    "content_words": .int(Int64(result.contentWords)), "score": .double(result.score.rounded(places: 6)),
                ]
                if let harm = result.harmProbability { detection["harm_probability"] = .double(harm.rounded(places: 6)) }
                if let leak = result.leakProbability { detection["leak_probability"] = .double(leak.rounded(places: 6)) }
                fields["detection"] = .object(detection)
            })]
        }
    }
}
