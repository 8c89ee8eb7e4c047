import LeaklessCore
import LeaklessImaging

/// dedup: near-duplicate images by perceptual hash, and duplicate or near-duplicate queries.
public enum DedupStage: PipelineStage {
    public static let definition = StageDefinition(
        name: "dedup", version: 4, summary: "drops near-duplicate images (perceptual hashes) and duplicate or near-duplicate queries",
        input: .records(["pair"]), output: .records("pair"),
        sharding: .whole(why: "a pair is kept or dropped by its near duplicates anywhere in the input"),
        parameters: StageParameter.declared(in: Parameters()))

    public struct Parameters: Decodable, Sendable {
        @Parameter("max_queries_per_image", .integer(1...1_000_000), default: 1, "queries one image (or group of near-duplicate images) may carry")
        public var maxQueriesPerImage: Int
        @Parameter("dedup_queries", .boolean, default: true, "drop a query already kept (normalised text, or SimHash within query_radius)")
        public var dedupQueries: Bool
        @Parameter("query_radius", .integer(0...63), default: 3, "SimHash bits within which two queries are near duplicates (0: exact only)")
        public var queryRadius: Int
        @Parameter("hash_mode", .choice(HashMode.allCases.map(\.rawValue)), default: "fast", "fast: DCT-scaled decode; compatible: exactly as Python imagehash")
        public var hashMode: HashMode
        @Parameter("phash_radius", .integer(0...63), default: 10, "pHash bits within which two images are near duplicates, when dHash confirms")
        public var phashRadius: Int
        @Parameter("dhash_radius", .integer(0...63), default: 10, "dHash bits within which two images are near duplicates, when pHash confirms")
        public var dhashRadius: Int
        @Parameter("phash_confirm", .integer(0...64), default: 16, "the pHash bound that confirms a dHash match")
        public var phashConfirm: Int
        @Parameter("dhash_confirm", .integer(0...64), default: 20, "the dHash bound that confirms a pHash match")
        public var dhashConfirm: Int
        @Parameter("source_priority", .stringList, default: [], "sources kept first, in this order (then the larger image, then the id)")
        public var sourcePriority: [String]
    }

    public static func implementation(_ parameters: Parameters, context: StageContext) throws -> StageImplementation {
        .twoPass(BuiltinDedupStage(context: context, parameters: parameters))
    }

    public static func provenance(of pair: Record) -> JSONValue? {
        pair["image"]?["hashes"].map { .object(["image_hashes": $0]) }
    }
}

extension HashMode: Decodable {}
