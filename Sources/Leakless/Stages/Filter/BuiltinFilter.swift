import LeaklessCore

/// filter, builtin: the final pair check, lexically. A pair passes when its query leans on the
/// image (a reference such as "this" or "shown", or a content word shared with the description),
/// so the two make one request, and when the description says enough to show something
/// (`min_description_words` content words). Whether the picture is risky is the paper's MLLM
/// judgement; the builtin backend cannot see pixels and does not pretend to.
public struct BuiltinFilterStage: RecordStage {
    let lexicon: Lexicon
    let minDescriptionWords: Int

    public init(parameters: FilterStage.Parameters) throws {
        lexicon = try Lexicon.load(path: parameters.lexicon)
        minDescriptionWords = parameters.minDescriptionWords
    }

    public mutating func process(_ record: Record) throws -> [StageOutput] {
        try record.requireKind(["pair"])
        let query = try record.requireString("query")
        let description = try record.requireString("image_description")
        let queryTokens = Text.tokens(query)
        let descriptionTokens = Text.tokens(description)

        let references = lexicon.referenceTerms.matches(in: queryTokens)
        let shared = Set(lexicon.contentWords(queryTokens).map(\.stem))
            .intersection(lexicon.contentWords(descriptionTokens).map(\.stem))
        if references.isEmpty && shared.isEmpty {
            return [.reject(record, reason: "query-ignores-image",
                            detail: "the query neither refers to the image nor shares a word with its description")]
        }
        let descriptionWords = lexicon.contentWords(descriptionTokens).count
        if descriptionWords < minDescriptionWords {
            return [.reject(record, reason: "vague-description",
                            detail: "the image description has \(descriptionWords) content word(s), fewer than \(minDescriptionWords)")]
        }
        return [.record(record)]
    }
}
