import LeaklessCore
import LeaklessEmbedding

/// image: an image for each query: retrieved from the captioned pool and the installed clip art
/// (builtin), drawn as text (typography), or generated, checked and refined by models.
public enum ImageStage: PipelineStage {
    public static let definition = StageDefinition(
        name: "image", version: 3,
        summary: "an image for each query: retrieval from the pool and clip art, else typography; or generation with verification",
        input: .records(["query", "seed"]), output: .records("pair"),
        // An element's queries spread over its best pictures: they stay in one shard.
        sharding: .groups(what: "an element's queries") { (try? $0.elementTerms().name) ?? $0.id },
        mergeExtra: ImageStage.mergeFigures,
        roles: [
            BackendRole("backend", serves: ["builtin", "image", "typography"], required: true,
                        "retrieval from the pool and clip art (builtin), the key phrase drawn as text (typography), or a text-to-image endpoint"),
            BackendRole("prompt_writer", serves: ["chat"], required: false, "turns an image description into a text-to-image prompt"),
            BackendRole("verifier", serves: ["chat"], required: false, needsVision: true, "checks each generated image shows the risk, and refines the prompt"),
            BackendRole("typography", serves: ["typography"], required: false,
                        "how text is drawn for the builtin fallback and the overlay (default: the typography kind's defaults)"),
        ],
        parameters: StageParameter.declared(in: Parameters()))

    public struct Parameters: Decodable, Sendable {
        @Parameter("pool", .path, default: "data/pool", "folder with pool.yaml and the photos")
        public var pool: String
        @Parameter("clipart", .collection, default: "/usr/share/openclipart", "the Open Clip Art Library (Debian openclipart-svg and openclipart-png); empty: photos only")
        public var clipart: String
        @Parameter("lexicon", .path, default: .string(Lexicon.defaultPath), "its stop words are ignored by TF-IDF matching")
        public var lexicon: String
        @Parameter("model", .optionalPath, default: .string(SentenceEmbedder.defaultFolder), "the sentence-embedding model folder (scripts/setup fetches it)")
        public var model: String
        @Parameter("matching", .choice(of: TextMatching.self), default: "auto", "caption matching: auto uses embeddings when the model is there, else TF-IDF with a warning")
        public var matching: TextMatching
        @Parameter("min_similarity", .number(0...1), default: 0.5, "embedding matching: the least cosine similarity a picture needs")
        public var minSimilarity: Double
        @Parameter("min_tfidf", .number(0...1), default: 0.5, "TF-IDF matching: the least cosine similarity a picture needs")
        public var minTfidf: Double
        @Parameter("spread", .integer(1...100), default: 4, "an element's queries share its best pictures, up to this many, instead of reusing one")
        public var spread: Int
        @Parameter("fallback", .choice(of: ImageFallback.self), default: "typography",
                   "with no picture above the threshold: the key phrase drawn as text, drawn under the best weak match, or reject")
        public var fallback: ImageFallback
        @Parameter("max_side", .integer(64...4096), default: 768, "clip art is scaled so its longer side is at most this")
        public var maxSide: Int
        @Parameter("max_rounds", .integer(1...10), default: 3, "generation: rounds of generate, verify, refine")
        public var maxRounds: Int
        @Parameter("overlay", .boolean, default: false, "generation: draw the key phrase in a band under each generated image (SD_TYPO)")
        public var overlay: Bool
    }

    public static func validate(_ parameters: Parameters) throws {
        try parameters.matching.check(model: parameters.model)
    }

    public static func implementation(_ parameters: Parameters, context: StageContext) throws -> StageImplementation {
        if context.network("backend") != nil {
            return .concurrent(try GenerateImage.stage(context, parameters: parameters))
        }
        if context.backend("backend")?.backendKind.serves == "typography" {
            return .sequential(try TypographyImageStage(context: context, parameters: parameters))
        }
        return .sequential(try BuiltinImageStage(context: context, parameters: parameters))
    }

    /// A record that already has its image (the perception path) passes through as a pair:
    /// nothing is retrieved, drawn or generated for it.
    static func passThrough(_ record: Record) -> [StageOutput]? {
        guard record["image"] != nil else { return nil }
        return [.record(record.derived { $0["kind"] = "pair" })]
    }

    /// How the image came about; its hashes are dedup's and its blob is the file itself.
    public static func provenance(of pair: Record) -> JSONValue? {
        guard var image = pair["image"]?.objectValue else { return nil }
        image.removeValue(forKey: "hashes")
        image.removeValue(forKey: "blob")
        return .object(image)
    }

}

/// What the image stage does for a query no picture matches well enough.
public enum ImageFallback: String, Sendable, CaseIterable, Decodable {
    /// The key phrase drawn as text.
    case typography
    /// The key phrase drawn over the best picture, matched or not.
    case typographyOverMatch = "typography_over_match"
    /// The query is a reject.
    case reject
}

extension ImageStage {
    /// The shards' counts summed; the pool's size and the threshold, the same in every shard,
    /// taken once; the pictures used counted again, distinct, over the merged output (one picture
    /// may serve elements in different shards).
    @Sendable static func mergeFigures(_ shards: [[String: JSONValue]], output: String) throws -> [String: JSONValue] {
        var merged = ShardMerge.sumFigures(shards)
        for setting in ["pool_photos", "pool_clipart", "threshold"] { merged[setting] = shards.first?[setting] }
        guard merged["pictures_used"] != nil else { return merged }
        var origins = Set<String>()
        let reader = try JSONLReader(path: output)
        while let (_, record) = try reader.nextRecord() {
            if let image = record.json["image"], image["method"]?.stringValue == "retrieval", let origin = image["origin"]?.stringValue {
                origins.insert(origin)
            }
        }
        merged["pictures_used"] = .int(Int64(origins.count))
        return merged
    }
}
