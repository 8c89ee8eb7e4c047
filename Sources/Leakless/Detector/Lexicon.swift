import LeaklessCore

/// The builtin detector's word lists (`data/lexicon.yaml`).
public struct Lexicon: Sendable {
    /// The project's lexicon, where the pipeline's stages and the commands look by default.
    public static let defaultPath = "data/lexicon.yaml"

    /// Risk terms tagged with their category, and intent terms tagged "intent".
    public let riskTerms: PhraseMatcher
    public let referenceTerms: PhraseMatcher
    /// The forms of a request for action ("how do I", "steps to", "write").
    public let requestTerms: PhraseMatcher
    public let stopStems: Set<String>
    /// The stop words' stems, found by key, for the per-token test.
    private let stopList: [String]
    private let stopKeys: StemIndex
    public let categories: [String]
    /// The tag of phrases that contain a risk word but are harmless as a whole.
    public static let benign = "benign"

    public static func load(path: String) throws -> Lexicon {
        try Lexicon(document: try YAMLDocument.load(path: path), path: path)
    }

    public init(document: YAMLNode, path: String) throws {
        let reader = ConfigReader(path: path)
        let top = try reader.mapping(document, "the lexicon", keys: ["risk_terms", "intent_terms", "benign_terms", "stop_words", "reference_terms", "request_terms"])
        let categoriesNode = try reader.mapping(try reader.required(top, "risk_terms"), "'risk_terms'")
        var matcher = PhraseMatcher()
        var categories: [String] = []
        for entry in categoriesNode.entries ?? [] {
            guard let terms = entry.value.writtenStrings else {
                throw reader.fail(entry.line, "risk terms of '\(entry.key)' must be a list of strings")
            }
            categories.append(entry.key)
            for term in terms { matcher.add(term, tag: entry.key) }
        }
        for term in try reader.strings(top, "intent_terms", nonEmpty: false) { matcher.add(term, tag: "intent") }
        // Matched with the risk terms so that the longer, harmless phrase wins ("photo shoot").
        if top["benign_terms"] != nil {
            for term in try reader.strings(top, "benign_terms", nonEmpty: false) { matcher.add(term, tag: Self.benign) }
        }
        riskTerms = matcher
        referenceTerms = PhraseMatcher(try reader.strings(top, "reference_terms", nonEmpty: true), tag: "reference")
        requestTerms = PhraseMatcher(try reader.strings(top, "request_terms", nonEmpty: true), tag: "request")
        stopStems = Set(try reader.strings(top, "stop_words", nonEmpty: true).map(Text.stem))
        stopList = stopStems.sorted()
        var stopKeys = StemIndex()
        for (position, stem) in stopList.enumerated() { stopKeys.set(Text.key(stem), to: position) }
        self.stopKeys = stopKeys
        self.categories = categories
    }

    /// Words of a query that carry content: not stop words, not references to the image.
    public func contentWords(_ tokens: [Token]) -> [Token] {
        let references = referenceTerms.matches(in: tokens)
        var inReference = [Bool](repeating: false, count: references.isEmpty ? 0 : tokens.count)
        for match in references { for index in match.tokens { inReference[index] = true } }
        var content: [Token] = []
        content.reserveCapacity(tokens.count)
        for (index, token) in tokens.enumerated() where (references.isEmpty || !inReference[index]) && !isStop(token) {
            content.append(token)
        }
        return content
    }

    @inline(__always)
    func isStop(_ token: Token) -> Bool { stopKeys[token.key].map { stopList[$0] == token.stem } ?? false }
}
