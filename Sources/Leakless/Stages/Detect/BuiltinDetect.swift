import LeaklessCore

/// detect, builtin: keeps the queries the lexical detector calls clean; rejects leaking and
/// harmful-alone ones with the words that name the risk, and meaningless ones with their count
/// of content words. The same detector audits other benchmarks (`leakless audit`).
public struct BuiltinDetectStage: RecordStage {
    let detector: LexicalDetector
    let useElementTerms: Bool
    let useDescription: Bool

    public init(parameters: DetectStage.Parameters) throws {
        var detector = LexicalDetector(lexicon: try Lexicon.load(path: parameters.lexicon),
                                       minContentWords: parameters.minContentWords)
        detector.threshold = parameters.threshold
        self.detector = detector
        useElementTerms = parameters.elementTerms
        useDescription = parameters.descriptionOverlap
    }

    public mutating func process(_ record: Record) throws -> [StageOutput] {
        try record.requireKind(["query"])
        let query = try record.requireString("query")
        var context = DetectionContext(elementTerms: useElementTerms ? try record.elementTerms().terms : [])
        if useDescription { context.description = record.string("image_description") ?? "" }
        let result = detector.judge(query, context: context)
        switch result.verdict {
        case .leaks, .harmfulAlone:
            let words = result.evidence.map { "'\($0.span)' (\($0.source): \($0.term))" }.joined(separator: ", ")
            let what = result.verdict == .leaks ? "names the risk" : "asks for the harm in words alone"
            return [.reject(record, reason: result.verdict.rawValue, detail: "\(what): \(words)")]
        case .meaningless:
            return [.reject(record, reason: "meaningless",
                            detail: "\(result.contentWords) content word(s), fewer than \(detector.minContentWords)")]
        case .clean:
            return [.record(record.derived { fields in
                fields["kind"] = "query"
                fields["detection"] = .object([
                    "detector": "builtin-lexical", "verdict": "clean",
                    "content_words": .int(Int64(result.contentWords)), "score": .double(result.score),
                ])
            })]
        }
    }
}
