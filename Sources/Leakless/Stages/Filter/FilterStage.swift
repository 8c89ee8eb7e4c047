import LeaklessCore

/// filter: the final pair check, the paper's MLLM filtration (or the builtin lexical check).
public enum FilterStage: PipelineStage {
    public static let definition = StageDefinition(
        name: "filter", version: 1, summary: "final pair check: the query and the image description make one request",
        input: .records(["pair"]), output: .records("pair"),
        roles: [BackendRole("backend", serves: ["builtin", "chat"], required: true, needsVision: true, "the pair filter")],
        parameters: StageParameter.declared(in: Parameters()))

    public struct Parameters: Decodable, Sendable {
        @Parameter("lexicon", .path, default: .string(Lexicon.defaultPath), "stop and reference word lists")
        public var lexicon: String
        @Parameter("min_description_words", .integer(0...50), default: 4, "fewer content words in the description is too vague")
        public var minDescriptionWords: Int
    }

    public static func implementation(_ parameters: Parameters, context: StageContext) throws -> StageImplementation {
        if context.network("backend") != nil {
            return .concurrent(try ModelStage(context) { try ModelFilter($0) })
        }
        return .sequential(try BuiltinFilterStage(parameters: parameters))
    }

    public static func provenance(of pair: Record) -> JSONValue? {
        pair["filter"] ?? .object(["method": "builtin"])
    }

}
