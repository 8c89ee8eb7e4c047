import LeaklessCore
import LeaklessEmbedding

/// detect: the VSIL detector. Rejects rewritten queries that still name the risk, ask for the
/// harm in words alone, or lost their meaning.
public enum DetectStage: PipelineStage {
    public static let definition = StageDefinition(
        name: "detect", version: 4, summary: "VSIL detector: rejects queries that still name the risk, and empty ones",
        input: .records(["query"]), output: .records("query"),
        // The learned detector judges records in batches: a shard holds whole batches.
        sharding: .records(block: BuiltinDetectStage.batch),
        roles: [BackendRole("backend", serves: ["builtin", "chat"], required: true, "the VSIL judge")],
        parameters: StageParameter.declared(in: Parameters()))

    public struct Parameters: Decodable, Sendable {
        @Parameter("detector", .choice(of: DetectorKind.self), default: "lexicon", "lexicon: the word lists; embedding: the learned heads on sentence embeddings, explained by the lexicon; classifier: the fine-tuned harm classifier with the lexicon in one decision, and the leak head (see README: their leave-one-source-out figures)")
        public var detector: DetectorKind
        @Parameter("model", .optionalPath, default: .string(SentenceEmbedder.defaultFolder), "the sentence-embedding model folder (scripts/setup fetches it)")
        public var model: String
        @Parameter("heads", .path, default: .string(DetectorSettings.defaultHeads), "the trained heads (leakless train-detector)")
        public var heads: String
        @Parameter("classifier", .path, default: .string(HarmClassifier.defaultPath), "the fine-tuned harm classifier (scripts/train-harm-classifier)")
        public var classifier: String
        @Parameter("taxonomy", .path, default: .string(DetectorSettings.defaultTaxonomy), "its harmful elements are the concepts a flagged query is explained by")
        public var taxonomy: String
        @Parameter("harm_threshold", .number(0...1), default: 0, "probability of harm (the harm head's, or with detector: classifier the classifier's decision) from which a query is harmful alone (0: the one they were calibrated with)")
        public var harmThreshold: Double
        @Parameter("leak_threshold", .number(0...1), default: 0, "leak-head probability from which a query names what the image shows (0: the one the heads were trained with)")
        public var leakThreshold: Double
        @Parameter("lexicon", .path, default: .string(Lexicon.defaultPath), "risk, intent, stop and reference word lists")
        public var lexicon: String
        @Parameter("min_content_words", .integer(0...20), default: 2, "fewer content words than this is meaningless")
        public var minContentWords: Int
        @Parameter("element_terms", .boolean, default: true, "also reject a query that names its element's own terms")
        public var elementTerms: Bool
        @Parameter("description_overlap", .boolean, default: true, "count content words shared with the image description towards a leak")
        public var descriptionOverlap: Bool
        @Parameter("threshold", .number(0...100), default: 1.0, "leak score from which a query is rejected (1 per named term, 0.25 per description word)")
        public var threshold: Double
    }

    public static func implementation(_ parameters: Parameters, context: StageContext) throws -> StageImplementation {
        if context.network("backend") != nil {
            return .concurrent(try ModelStage(context) { try ModelDetect($0) })
        }
        return .sequential(try BuiltinDetectStage(parameters: parameters))
    }

    public static func validate(_ parameters: Parameters) throws {
        if parameters.detector != .lexicon && !SentenceEmbedder.available(in: parameters.model) {
            throw RecordError("the embedding model is not in \(parameters.model): run ./scripts/setup, or set 'detector: lexicon'")
        }
    }

    public static func provenance(of pair: Record) -> JSONValue? { pair["detection"] }

    public static func editJudge(_ parameters: Parameters) -> EditJudge? {
        EditJudge(settings: parameters.detectorSettings) { try BuiltinDetectStage(parameters: parameters) }
    }

}

extension DetectStage.Parameters {
    /// The detector these parameters describe.
    public var detectorSettings: DetectorSettings {
        var settings = DetectorSettings(kind: detector)
        settings.lexicon = lexicon
        settings.minContentWords = minContentWords
        settings.threshold = threshold
        settings.model = model
        settings.heads = heads
        settings.classifier = classifier
        settings.taxonomy = taxonomy
        settings.harmThreshold = harmThreshold > 0 ? Float(harmThreshold) : nil
        settings.leakThreshold = leakThreshold > 0 ? Float(leakThreshold) : nil
        return settings
    }
}
