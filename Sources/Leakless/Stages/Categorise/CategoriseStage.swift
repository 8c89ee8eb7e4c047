import LeaklessCore
import LeaklessEmbedding

/// categorise: each pair gets one category and sub-category of the taxonomy, from the
/// definitions: by a chat model, or by the builtin categoriser (the nearest harmful element or
/// definition by text similarity). A perception pair takes the answer; a generated pair keeps
/// the category it was made for, and a disagreement is recorded, never silently applied.
public enum CategoriseStage: PipelineStage {
    public static let definition = StageDefinition(
        name: "categorise", version: 2,
        summary: "one category and sub-category per pair from the taxonomy's definitions; disagreements with a generated pair's own are recorded",
        input: .records(["pair"]), output: .records("pair"),
        roles: [BackendRole("backend", serves: ["builtin", "chat"], required: true, "the categoriser: the pair and the definitions in, a category out")],
        parameters: StageParameter.declared(in: Parameters()))

    public struct Parameters: Decodable, Sendable {
        @Parameter("taxonomy", .path, default: "data/taxonomy.yaml", "the categories, sub-categories and their definitions")
        public var taxonomy: String
        @Parameter("lexicon", .path, default: .string(Lexicon.defaultPath), "builtin, TF-IDF: its stop words are left out")
        public var lexicon: String
        @Parameter("model", .optionalPath, default: .string(SentenceEmbedder.defaultFolder), "builtin: the sentence-embedding model folder")
        public var model: String
        @Parameter("matching", .choice(of: TextMatching.self), default: "auto",
                   "builtin: embeddings when the model is there (auto), or TF-IDF")
        public var matching: TextMatching
    }

    public static func validate(_ parameters: Parameters) throws {
        try parameters.matching.check(model: parameters.model)
    }

    public static func implementation(_ parameters: Parameters, context: StageContext) throws -> StageImplementation {
        let taxonomy = try Taxonomy.load(path: parameters.taxonomy)
        if context.network("backend") != nil {
            return .concurrent(try ModelStage(context) { try ModelCategorise($0, taxonomy: taxonomy) })
        }
        return .sequential(try BuiltinCategoriseStage(parameters: parameters, taxonomy: taxonomy))
    }

    public static func provenance(of pair: Record) -> JSONValue? { pair["categorise"] }

    /// The decision written on a pair: what the categoriser said and whether the pair agrees.
    static func decide(_ record: Record, category: String, subCategory: String, provenance: [String: JSONValue]) -> Record {
        let perceived = record["path"]?.stringValue == "perception"
        let madeFor = (record["category"]?.stringValue ?? "", record["sub_category"]?.stringValue ?? "")
        var decision = provenance
        decision["category"] = .string(category)
        decision["sub_category"] = .string(subCategory)
        decision["agrees"] = .bool(madeFor == (category, subCategory))
        decision["agrees_on_category"] = .bool(madeFor.0 == category)
        decision["applied"] = .bool(perceived)
        if perceived && !madeFor.0.isEmpty {
            decision["before"] = .object(["category": .string(madeFor.0), "sub_category": .string(madeFor.1)])
        }
        return record.derived { fields in
            if perceived {
                fields["category"] = .string(category)
                fields["sub_category"] = .string(subCategory)
            }
            fields["categorise"] = .object(decision)
        }
    }
}

/// categorise, builtin: the taxonomy entry nearest to the image description and the query.
struct BuiltinCategoriseStage: RecordStage {
    let categoriser: Categoriser
    var disagreements = 0

    init(parameters: CategoriseStage.Parameters, taxonomy: Taxonomy) throws {
        let embedder = try parameters.matching.embedder(model: parameters.model, stage: "categorise", what: "categorising")
        categoriser = try Categoriser(taxonomy: taxonomy, embedder: embedder, stopStems: try Lexicon.load(path: parameters.lexicon).stopStems)
    }

    var extraStats: [String: JSONValue] { ["disagreements": .int(Int64(disagreements))] }

    mutating func process(_ record: Record) throws -> [StageOutput] {
        try record.requireKind(["pair"])
        let text = [record["image_description"]?.stringValue ?? "", try record.requireString("query")].filter { !$0.isEmpty }.joined(separator: " ")
        guard let match = categoriser.best(text) else { throw RecordError("the taxonomy has no categories") }
        let decided = CategoriseStage.decide(record, category: match.entry.category, subCategory: match.entry.subCategory, provenance: [
            "method": "builtin", "matching": .string(categoriser.method),
            "similarity": .double((match.similarity * 1000).rounded() / 1000),
            "nearest": .string(match.entry.element?.name ?? match.entry.definition),
        ])
        if decided["categorise"]?["agrees"]?.boolValue == false { disagreements += 1 }
        return [.record(decided)]
    }
}
