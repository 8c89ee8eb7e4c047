import LeaklessCore
import LeaklessEmbedding

/// Which offline detector judges a query.
public enum DetectorKind: String, Sendable, CaseIterable, Decodable {
    /// The word lists alone.
    case lexicon
    /// The learned heads on sentence embeddings, explained by the lexicon.
    case embedding
    /// The fine-tuned harm classifier with the lexicon in one decision, and the leak head.
    case classifier
}

/// Everything an offline detector is built from, as the detect stage, the audit, the review app
/// and the development commands give it: the one place a detector is made.
public struct DetectorSettings: Sendable {
    public static let defaultHeads = "data/detector/heads.json"
    public static let defaultTaxonomy = "data/taxonomy.yaml"

    public var kind: DetectorKind = .lexicon
    public var lexicon = Lexicon.defaultPath
    public var minContentWords = 2
    /// The lexical leak score from which a query is rejected.
    public var threshold = 1.0
    public var model = SentenceEmbedder.defaultFolder
    public var heads = DetectorSettings.defaultHeads
    public var classifier = HarmClassifier.defaultPath
    public var taxonomy = DetectorSettings.defaultTaxonomy
    /// Nil: the threshold the heads (or the classifier) were calibrated with.
    public var harmThreshold: Float?
    public var leakThreshold: Float?

    public init(kind: DetectorKind = .lexicon) { self.kind = kind }

    public func lexical() throws -> LexicalDetector {
        var detector = LexicalDetector(lexicon: try Lexicon.load(path: lexicon), minContentWords: minContentWords)
        detector.threshold = threshold
        return detector
    }

    /// The learned detector (embedding or classifier), nil for the lexicon.
    public func learned() throws -> EmbeddingDetector? {
        guard kind != .lexicon else { return nil }
        return EmbeddingDetector(
            embedder: try SentenceEmbedder(folder: model), heads: try EmbeddingDetector.Heads.load(path: heads), lexical: try lexical(),
            taxonomy: try Taxonomy.load(path: taxonomy), harmThreshold: harmThreshold, leakThreshold: leakThreshold,
            classifier: kind == .classifier ? try HarmClassifier(model: model, path: classifier) : nil)
    }
}
