import LeaklessCore

/// image: an image for each query, retrieved from the captioned pool (builtin) or generated,
/// checked and refined by models.
public enum ImageStage: PipelineStage {
    public static let definition = StageDefinition(
        name: "image", version: 2, summary: "an image for each query: retrieval from the captioned pool, or generation with verification",
        input: .records(["query", "seed"]), output: .records("pair"),
        roles: [
            BackendRole("backend", serves: ["builtin", "image"], required: true, "retrieval from the pool (builtin) or a text-to-image endpoint"),
            BackendRole("prompt_writer", serves: ["chat"], required: false, "turns an image description into a text-to-image prompt"),
            BackendRole("verifier", serves: ["chat"], required: false, needsVision: true, "checks each generated image shows the risk, and refines the prompt"),
        ],
        parameters: [
            StageParameter("pool", .path, default: "data/pool", "folder with pool.yaml and the photos"),
            StageParameter("lexicon", .path, default: "data/lexicon.yaml", "its stop words are ignored when matching captions"),
            StageParameter("min_score", .number(0...1), default: 0.0, "reject when the best caption match scores below this"),
            StageParameter("max_rounds", .integer(1...10), default: 3, "generation: rounds of generate, verify, refine"),
        ])

    public struct Parameters: Decodable, Sendable {
        public var pool: String
        public var lexicon: String
        public var minScore: Double
        public var maxRounds: Int
    }

    public static func implementation(_ parameters: Parameters, context: StageContext) throws -> StageImplementation {
        if context.network("backend") != nil {
            return .concurrent(try GenerateImageStage(context: context, parameters: parameters))
        }
        return .sequential(try BuiltinImageStage(context: context, parameters: parameters))
    }

    /// How the image came about; its hashes are dedup's and its blob is the file itself.
    public static func provenance(of pair: Record) -> JSONValue? {
        guard var image = pair["image"]?.objectValue else { return nil }
        image.removeValue(forKey: "hashes")
        image.removeValue(forKey: "blob")
        return .object(image)
    }

    public static func mockReply(to prompt: String) -> JSONValue? {
        if prompt.contains("\"shows_risk\"") {
            return ["shows_risk": true, "reason": "the object is in plain view", "refined_prompt": ""]
        }
        if prompt.contains("{\"prompt\"") {
            return ["prompt": .string("Realistic photograph, " + PromptText.line(after: "Image description:", in: prompt))]
        }
        return nil
    }
}
