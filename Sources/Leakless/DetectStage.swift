import LeaklessCore

/// What the builtin detector finds in one query.
public struct LexicalVerdict: Sendable, Equatable {
    public enum Verdict: String, Sendable { case clean, leaks, meaningless }

    public struct Evidence: Sendable, Equatable {
        /// The words of the query, as written.
        public let span: String
        /// The lexicon or element term they match.
        public let term: String
        /// A category of the lexicon, "intent", or "element".
        public let source: String
    }

    public let verdict: Verdict
    public let evidence: [Evidence]
    public let contentWords: Int
}

/// The builtin lexical VSIL detector: a query leaks when it names a risk term of the lexicon or
/// one of the element's own terms; it is meaningless when fewer than `minContentWords` words carry
/// content once stop words and references to the image are set aside.
public struct LexicalDetector: Sendable {
    public let lexicon: Lexicon
    public let minContentWords: Int

    public init(lexicon: Lexicon, minContentWords: Int) {
        self.lexicon = lexicon
        self.minContentWords = minContentWords
    }

    public func judge(_ query: String, elementTerms: [String] = []) -> LexicalVerdict {
        let tokens = Text.tokens(query)
        func evidence(_ matches: [PhraseMatcher.Match]) -> [LexicalVerdict.Evidence] {
            matches.map { match in
                let range = tokens[match.tokens.lowerBound].range.lowerBound..<tokens[match.tokens.upperBound - 1].range.upperBound
                return .init(span: String(query[range]), term: match.phrase, source: match.tag)
            }
        }
        var found = evidence(lexicon.riskTerms.matches(in: tokens))
        let elementMatches = evidence(PhraseMatcher(elementTerms, tag: "element").matches(in: tokens))
        for item in elementMatches where !found.contains(where: { $0.span.lowercased() == item.span.lowercased() }) {
            found.append(item)
        }
        let content = lexicon.contentWords(tokens).count
        if !found.isEmpty { return LexicalVerdict(verdict: .leaks, evidence: found, contentWords: content) }
        if content < minContentWords { return LexicalVerdict(verdict: .meaningless, evidence: [], contentWords: content) }
        return LexicalVerdict(verdict: .clean, evidence: [], contentWords: content)
    }
}

/// detect, builtin: keeps the queries the lexical detector calls clean; rejects leaking ones
/// with the words that leak, and meaningless ones with their count of content words.
public struct BuiltinDetectStage: RecordStage {
    let detector: LexicalDetector
    let useElementTerms: Bool

    public init(context: StageContext) throws {
        detector = LexicalDetector(lexicon: try Lexicon.load(path: context.string("lexicon")),
                                   minContentWords: context.int("min_content_words"))
        useElementTerms = context.bool("element_terms")
    }

    public mutating func process(_ record: Record) throws -> [StageOutput] {
        try record.requireKind(["query"])
        let query = try record.requireString("query")
        let terms = useElementTerms ? try record.elementTerms().terms : []
        let result = detector.judge(query, elementTerms: terms)
        switch result.verdict {
        case .leaks:
            let words = result.evidence.map { "'\($0.span)' (\($0.source): \($0.term))" }.joined(separator: ", ")
            return [.reject(record, reason: "leaks", detail: "names the risk: \(words)")]
        case .meaningless:
            return [.reject(record, reason: "meaningless",
                            detail: "\(result.contentWords) content word(s), fewer than \(detector.minContentWords)")]
        case .clean:
            return [.record(record.derived { fields in
                fields["kind"] = "query"
                fields["detection"] = .object([
                    "detector": "builtin-lexical", "verdict": "clean",
                    "content_words": .int(Int64(result.contentWords)),
                ])
            })]
        }
    }
}
