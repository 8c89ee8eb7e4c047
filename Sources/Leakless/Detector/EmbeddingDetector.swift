import Foundation
import LeaklessCore
import LeaklessEmbedding

/// The learned VSIL detector: two logistic heads on all-MiniLM-L6-v2 sentence embeddings,
/// trained by `leakless train-detector` on the development benchmarks.
///
/// - `harmful-alone`: the harm head (the query's embedding) says the text is an unsafe request
///   without any image, with probability `harmThreshold` or more.
/// - `leaks`: the leak head (the query's embedding times the embedding of what the image shows,
///   its description, key phrases or element terms, and their cosine) says the query names or
///   strongly implies it, with probability `leakThreshold` or more.
/// - `leaks` too when the query names one of its element's own terms (the detect stage's
///   `element_terms`): that names what the image shows, whatever the heads say.
/// - `meaningless`: too few content words (the lexicon's count).
/// - `clean` otherwise.
/// Each verdict is explained: the lexicon's matching spans, and the nearest harmful element of
/// the taxonomy with its similarity.
public final class EmbeddingDetector: Sendable {
    public struct Heads: Sendable {
        public let harm: LogisticHead
        public let leak: LogisticHead
        public let harmThreshold: Float
        public let leakThreshold: Float
        public let description: JSONValue

        public init(harm: LogisticHead, leak: LogisticHead, harmThreshold: Float = 0.5, leakThreshold: Float = 0.5, description: JSONValue = [:]) {
            self.harm = harm
            self.leak = leak
            self.harmThreshold = harmThreshold
            self.leakThreshold = leakThreshold
            self.description = description
        }

        public static func load(path: String) throws -> Heads {
            let value = try JSONParser.parse(bytes: try FileSystem.read(path))
            return Heads(
                harm: try LogisticHead(json: value["harm"], path: path), leak: try LogisticHead(json: value["leak"], path: path),
                harmThreshold: Float(value["harm_threshold"]?.doubleValue ?? 0.5), leakThreshold: Float(value["leak_threshold"]?.doubleValue ?? 0.5),
                description: value["trained_on"] ?? [:])
        }
    }

    public struct Concept: Sendable {
        public let name: String
        public let category: String
        public let vector: [Float]
    }

    public let embedder: SentenceEmbedder
    public let heads: Heads
    public let harmThreshold: Float
    public let leakThreshold: Float
    public let lexical: LexicalDetector
    public let concepts: [Concept]
    /// The fine-tuned harm classifier: where there is one, it decides harm (its stacked
    /// probability and threshold) in place of the harm head, and the nearest concept is found with
    /// its vectors, so a query without an image is embedded once, by it alone.
    public let classifier: HarmClassifier?

    public init(embedder: SentenceEmbedder, heads: Heads, lexical: LexicalDetector, taxonomy: Taxonomy?,
                harmThreshold: Float? = nil, leakThreshold: Float? = nil, concepts known: [Concept]? = nil, classifier: HarmClassifier? = nil) {
        self.embedder = embedder
        self.heads = heads
        self.lexical = lexical
        self.classifier = classifier
        self.harmThreshold = harmThreshold ?? classifier?.threshold ?? heads.harmThreshold
        self.leakThreshold = leakThreshold ?? heads.leakThreshold
        var names: [(String, String)] = []
        for category in taxonomy?.categories ?? [] {
            for sub in category.subCategories {
                for element in sub.elements { names.append((element.name, category.name)) }
            }
        }
        if let known {
            concepts = known
        } else {
            let vectors = (classifier?.embedder ?? embedder).embed(names.map(\.0))
            concepts = zip(names, vectors).map { Concept(name: $0.0, category: $0.1, vector: $1) }
        }
    }

    /// What the leak head sees of a query and what the image shows.
    public static func pairFeatures(_ query: [Float], _ image: [Float]) -> [Float] {
        var features = [Float](repeating: 0, count: query.count + 1)
        var cosine: Float = 0
        for i in 0..<query.count {
            features[i] = query[i] * image[i]
            cosine += features[i]
        }
        features[query.count] = cosine
        return features
    }

    /// What is known of the image, as one text for the embedding.
    static func imageText(_ context: DetectionContext) -> String {
        ([context.description] + context.keyPhrases + context.elementTerms).filter { !$0.isEmpty }.joined(separator: "; ")
    }

    /// The verdicts of many queries at once (embedded in batches; `known` texts are not embedded
    /// again by the base model).
    public func judge(_ items: [(query: String, context: DetectionContext)], known: [String: [Float]] = [:]) -> [LexicalVerdict] {
        let images = items.map { Self.imageText($0.context) }
        // The base model embeds what the heads read: every query without a classifier, with one
        // only the queries that have an image to leak.
        var texts = zip(items, images).filter { classifier == nil || !$1.isEmpty }.map(\.0.query)
        texts += images.filter { !$0.isEmpty }
        var seen = Set<String>()
        let missing = texts.filter { known[$0] == nil && seen.insert($0).inserted }
        var vectors = known
        for (text, vector) in zip(missing, embedder.embed(missing)) { vectors[text] = vector }
        let tuned = classifier?.scores(items.map(\.query), lexical: lexical)
        return items.indices.map { index in
            let (query, context) = items[index]
            let image = images[index]
            let leak = image.isEmpty ? nil : heads.leak.probability(Self.pairFeatures(vectors[query]!, vectors[image]!))
            if let tuned {
                return verdict(query, context: context, harm: tuned[index].probability, leak: leak, vector: tuned[index].vector)
            }
            return verdict(query, context: context, harm: heads.harm.probability(vectors[query]!), leak: leak, vector: vectors[query]!)
        }
    }

    public func judge(_ query: String, context: DetectionContext = DetectionContext()) -> LexicalVerdict {
        judge([(query, context)])[0]
    }

    /// `vector`: the query's, in the space the concepts were embedded in.
    func verdict(_ text: String, context: DetectionContext, harm: Float, leak: Float?, vector: [Float]) -> LexicalVerdict {
        let words = lexical.judge(text, context: context)
        var evidence = words.evidence
        if let nearest = concepts.map({ ($0, SentenceEmbedder.cosine(vector, $0.vector)) }).max(by: { $0.1 < $1.1 }) {
            evidence.append(LexicalVerdict.Evidence(
                span: "", term: nearest.0.name, source: "nearest concept (\(nearest.0.category), similarity \(String(format1: Double(nearest.1), digits: 2)))"))
        }
        let verdict: LexicalVerdict.Verdict
        if words.verdict == .meaningless {
            verdict = .meaningless
        } else if harm >= harmThreshold {
            verdict = .harmfulAlone
        } else if let leak, leak >= leakThreshold {
            verdict = .leaks
        } else if words.evidence.contains(where: { $0.source == "element" }) {
            // The record's own element terms, named: a leak whatever the heads say.
            verdict = .leaks
        } else if leak != nil, words.verdict == .leaks {
            // With an image, a query that names a risk term the lexicon holds (or the image's own
            // words) names what the image shows: a leak, as the lexical detector says.
            verdict = .leaks
        } else {
            verdict = .clean
        }
        return LexicalVerdict(
            verdict: verdict, evidence: evidence, contentWords: words.contentWords, score: Double(max(harm, leak ?? 0)),
            harmProbability: Double(harm), leakProbability: leak.map(Double.init))
    }
}
