import LeaklessCore

/// What is known of the image a query goes with: its description (or caption), key phrases
/// shown in it (MM-SafetyBench's typography), and the harmful element's own terms.
public struct DetectionContext: Sendable, Equatable {
    public var description: String
    public var keyPhrases: [String]
    public var elementTerms: [String]

    public init(description: String = "", keyPhrases: [String] = [], elementTerms: [String] = []) {
        self.description = description
        self.keyPhrases = keyPhrases
        self.elementTerms = elementTerms
    }
}

/// The detector's decision about one query, with its evidence.
public struct LexicalVerdict: Sendable, Equatable {
    public enum Verdict: String, Sendable, CaseIterable {
        case clean, leaks
        case harmfulAlone = "harmful-alone"
        case meaningless
    }

    public struct Evidence: Sendable, Equatable {
        /// The words of the query, as written.
        public let span: String
        /// The lexicon term, element term, key phrase or description word they match.
        public let term: String
        /// A category of the lexicon, "intent", "element", "key-phrase" or "description".
        public let source: String
        /// Where the span starts in the query and how long it is, in characters.
        public var offset: Int = 0
        public var length: Int = 0

        public init(span: String, term: String, source: String, offset: Int = 0, length: Int = 0) {
            self.span = span
            self.term = term
            self.source = source
            self.offset = offset
            self.length = length
        }

        public static func == (a: Evidence, b: Evidence) -> Bool { (a.span, a.term, a.source) == (b.span, b.term, b.source) }
    }

    public let verdict: Verdict
    public let evidence: [Evidence]
    public let contentWords: Int
    /// How strongly the query names the risk: 1 for each lexicon, element or key-phrase match,
    /// `descriptionWeight` for each content word it shares with the image description (the
    /// lexicon); the larger head probability (the embedding detector).
    public let score: Double
    /// The embedding detector's heads: the text alone is unsafe; the text names what the image shows.
    public var harmProbability: Double? = nil
    public var leakProbability: Double? = nil
}

/// The builtin lexical VSIL detector.
///
/// - `leaks`: the query names the risk: a risk or intent term of the lexicon, one of the
///   element's terms or a key phrase the image carries, or enough content words of the image's
///   description; their weights add up to `threshold` or more.
/// - `harmful-alone`: it leaks and is moreover a request in itself: a request form ("how do I",
///   "steps to", "write") with a lexicon risk term, and either an intent term or no reference to
///   the image for what it asks about, so the text alone asks for the harm.
/// - `meaningless`: fewer than `minContentWords` words carry content once stop words and
///   references to the image are set aside.
/// - `clean` otherwise.
public struct LexicalDetector: Sendable {
    public let lexicon: Lexicon
    public let minContentWords: Int
    public var threshold: Double = 1.0
    public var descriptionWeight: Double = 0.25

    public init(lexicon: Lexicon, minContentWords: Int) {
        self.lexicon = lexicon
        self.minContentWords = minContentWords
    }

    public func judge(_ query: String, elementTerms: [String] = []) -> LexicalVerdict {
        judge(query, context: DetectionContext(elementTerms: elementTerms))
    }

    public func judge(_ query: String, context: DetectionContext) -> LexicalVerdict {
        judge(query, tokens: Text.tokens(query), context: context)
    }

    /// The verdict on a query whose tokens are already made (`Text.tokens(query)`).
    public func judge(_ query: String, tokens: [Token], context: DetectionContext) -> LexicalVerdict {
        func evidence(_ matches: [PhraseMatcher.Match]) -> [LexicalVerdict.Evidence] {
            matches.map { match in
                let range = tokens[match.tokens.lowerBound].range.lowerBound..<tokens[match.tokens.upperBound - 1].range.upperBound
                return .init(
                    span: String(query[range]), term: match.phrase, source: match.tag,
                    offset: query.distance(from: query.startIndex, to: range.lowerBound), length: query.distance(from: range.lowerBound, to: range.upperBound))
            }
        }
        let riskMatches = lexicon.riskTerms.matches(in: tokens).filter { $0.tag != Lexicon.benign }
        var found = evidence(riskMatches)
        var covered = Set(riskMatches.flatMap { Array($0.tokens) })
        var named = PhraseMatcher(context.elementTerms, tag: "element")
        for phrase in context.keyPhrases { named.add(phrase, tag: "key-phrase") }
        for match in named.matches(in: tokens) where !match.tokens.contains(where: covered.contains) {
            found += evidence([match])
            covered.formUnion(match.tokens)
        }
        let content = lexicon.contentWords(tokens)
        var score = Double(found.count)
        if !context.description.isEmpty {
            // Each stem of the description's content words, with the word as the description writes it.
            var described: [Token] = []
            var byKey = StemIndex()
            for word in lexicon.contentWords(Text.tokens(context.description)) where byKey[word.key] == nil {
                byKey.set(word.key, to: described.count)
                described.append(word)
            }
            for (index, token) in tokens.enumerated() where !covered.contains(index) {
                guard let position = byKey[token.key], described[position].stem == token.stem,
                    content.contains(where: { $0.range == token.range })
                else { continue }
                found.append(.init(
                    span: token.text, term: described[position].text.lowercased(), source: "description",
                    offset: query.distance(from: query.startIndex, to: token.range.lowerBound), length: token.text.count))
                score += descriptionWeight
            }
        }
        if score >= threshold {
            let risky = riskMatches.contains { $0.tag != "intent" }
            let intent = riskMatches.contains { $0.tag == "intent" }
            let asks = !lexicon.requestTerms.matches(in: tokens).isEmpty
            let leansOnImage = !lexicon.referenceTerms.matches(in: tokens).isEmpty
            let verdict: LexicalVerdict.Verdict = (risky || intent) && asks && (intent || !leansOnImage) ? .harmfulAlone : .leaks
            return LexicalVerdict(verdict: verdict, evidence: found, contentWords: content.count, score: score)
        }
        if content.count < minContentWords {
            return LexicalVerdict(verdict: .meaningless, evidence: found, contentWords: content.count, score: score)
        }
        return LexicalVerdict(verdict: .clean, evidence: found, contentWords: content.count, score: score)
    }

    /// What the lexicon says of a text alone, as numbers for a model that weighs it with other
    /// evidence (`HarmClassifier`): risk terms named (0, 1/3, 2/3, 1 for three or more), a term of
    /// harmful intent, a request form, words that lean on an image, and the lexicon's own
    /// harmful-alone verdict (each 0 or 1).
    public static let harmFeatureCount = 5

    public func harmFeatures(_ query: String) -> [Float] {
        let tokens = Text.tokens(query)
        let matches = lexicon.riskTerms.matches(in: tokens).filter { $0.tag != Lexicon.benign }
        let risky = matches.filter { $0.tag != "intent" }.count
        let intent = matches.contains { $0.tag == "intent" }
        let asks = !lexicon.requestTerms.matches(in: tokens).isEmpty
        let leans = !lexicon.referenceTerms.matches(in: tokens).isEmpty
        let verdict = judge(query, tokens: tokens, context: DetectionContext()).verdict
        return [Float(min(risky, 3)) / 3, intent ? 1 : 0, asks ? 1 : 0, leans ? 1 : 0, verdict == .harmfulAlone ? 1 : 0]
    }
}
