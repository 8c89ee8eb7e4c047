import LeaklessCore

/// rewrite: each harmful seed query becomes queries whose risk lives in the image.
public enum RewriteStage: PipelineStage {
    public static let definition = StageDefinition(
        name: "rewrite", version: 1, summary: "harmful queries -> queries whose risk lives in the image",
        input: .records(["seed"]), output: .records("query"),
        roles: [BackendRole("backend", serves: ["builtin", "chat"], required: true, "the rewriter: moves the risk from the text to the image")],
        parameters: StageParameter.declared(in: Parameters()))

    public struct Parameters: Decodable, Sendable {
        @Parameter("variants_per_query", .integer(1...3), default: 3, "rewritten variants per harmful query")
        public var variantsPerQuery: Int
    }

    public static func implementation(_ parameters: Parameters, context: StageContext) throws -> StageImplementation {
        if context.network("backend") != nil {
            return .concurrent(try ModelStage(context) { try ModelRewrite($0, parameters: parameters) })
        }
        return .sequential(try BuiltinRewriteStage(context: context, parameters: parameters))
    }

    public static func provenance(of pair: Record) -> JSONValue? { pair["rewrite"] }

}
