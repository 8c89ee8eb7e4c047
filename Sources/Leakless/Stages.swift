import LeaklessCore

/// The stages of the pipeline, in their natural order, with their parameters.
public enum Stages {
    public static let extract = StageDefinition(
        name: "extract", version: 1, summary: "harmful elements of the taxonomy -> image descriptions and harmful seed queries",
        input: .parameter("taxonomy"), outputKind: "seed", 
        roles: [BackendRole("backend", serves: ["builtin", "chat"], required: true, "the generator: writes image descriptions and harmful queries")],
        parameters: [
            StageParameter("taxonomy", .path, default: "data/taxonomy.yaml", "the taxonomy of categories and harmful elements"),
            StageParameter("queries_per_element", .integer(1...20), default: 3, "harmful queries written per element"),
            StageParameter("seed", .integer(Int64.min...Int64.max), default: 1, "seed of the template choice"),
            StageParameter("categories", .stringList, default: [], "only these categories (empty: all)"),
        ])

    public static let rewrite = StageDefinition(
        name: "rewrite", version: 1, summary: "harmful queries -> queries whose risk lives in the image",
        input: .records(["seed"]), outputKind: "query", 
        roles: [BackendRole("backend", serves: ["builtin", "chat"], required: true, "the rewriter: moves the risk from the text to the image")],
        parameters: [
            StageParameter("variants_per_query", .integer(1...3), default: 3, "rewritten variants per harmful query"),
        ])

    public static let detect = StageDefinition(
        name: "detect", version: 2, summary: "VSIL detector: rejects queries that still name the risk, and empty ones",
        input: .records(["query"]), outputKind: "query", 
        roles: [BackendRole("backend", serves: ["builtin", "chat"], required: true, "the VSIL judge")],
        parameters: [
            StageParameter("lexicon", .path, default: "data/lexicon.yaml", "risk, intent, stop and reference word lists"),
            StageParameter("min_content_words", .integer(0...20), default: 2, "fewer content words than this is meaningless"),
            StageParameter("element_terms", .boolean, default: true, "also reject a query that names its element's own terms"),
            StageParameter("description_overlap", .boolean, default: true, "count content words shared with the image description towards a leak"),
            StageParameter("threshold", .number(0...100), default: 1.0, "leak score from which a query is rejected (1 per named term, 0.25 per description word)"),
        ])

    public static let image = StageDefinition(
        name: "image", version: 1, summary: "an image for each query: retrieval from the captioned pool, or generation with verification",
        input: .records(["query"]), outputKind: "pair", 
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

    public static let filter = StageDefinition(
        name: "filter", version: 1, summary: "final pair check: the query and the image description make one request",
        input: .records(["pair"]), outputKind: "pair", 
        roles: [BackendRole("backend", serves: ["builtin", "chat"], required: true, needsVision: true, "the pair filter")],
        parameters: [
            StageParameter("lexicon", .path, default: "data/lexicon.yaml", "stop and reference word lists"),
            StageParameter("min_description_words", .integer(0...50), default: 4, "fewer content words in the description is too vague"),
        ])

    public static let dedup = StageDefinition(
        name: "dedup", version: 2, summary: "drops near-duplicate images (perceptual hashes) and duplicate or near-duplicate queries",
        input: .records(["pair"]), outputKind: "pair",
        parameters: [
            StageParameter("max_queries_per_image", .integer(1...1_000_000), default: 1, "queries one image (or group of near-duplicate images) may carry"),
            StageParameter("dedup_queries", .boolean, default: true, "drop a query already kept (normalised text, or SimHash within query_radius)"),
            StageParameter("query_radius", .integer(0...63), default: 3, "SimHash bits within which two queries are near duplicates (0: exact only)"),
            StageParameter("hash_mode", .choice(["fast", "compatible"]), default: "fast", "fast: DCT-scaled decode; compatible: exactly as Python imagehash"),
            StageParameter("phash_radius", .integer(0...63), default: 10, "pHash bits within which two images are near duplicates, when dHash confirms"),
            StageParameter("dhash_radius", .integer(0...63), default: 10, "dHash bits within which two images are near duplicates, when pHash confirms"),
            StageParameter("phash_confirm", .integer(0...64), default: 16, "the pHash bound that confirms a dHash match"),
            StageParameter("dhash_confirm", .integer(0...64), default: 20, "the dHash bound that confirms a pHash match"),
            StageParameter("source_priority", .stringList, default: [], "sources kept first, in this order (then the larger image, then the id)"),
        ])

    public static let export = StageDefinition(
        name: "export", version: 2, summary: "the benchmark in VLSBench's layout: data.json and imgs/",
        input: .records(["pair"]), outputKind: nil, 
        parameters: [
            StageParameter("format", .choice(["vlsbench", "imagefolder"]), default: "vlsbench", "the layout: VLSBench's data.json, or a Hugging Face imagefolder (metadata.jsonl)"),
        ])

    public static let all = [extract, rewrite, detect, image, filter, dedup, export]

    public static func definition(named name: String) -> StageDefinition? {
        all.first { $0.name == name }
    }
}
