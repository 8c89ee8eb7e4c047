import Foundation
import LeaklessCore
import LeaklessEmbedding

/// The text-alone harm judgement that reads intent, not only topic: all-MiniLM-L6-v2's lower
/// layers as they are, then layers fine-tuned on harmful and harmless requests (the labelled sets
/// of `scripts/train-harm-classifier`), mean pooling, unit length and a logistic head; then one
/// decision from all the evidence: a logistic model over the head's logit and the lexicon's
/// features (`LexicalDetector.harmFeatures`), with a threshold calibrated on harmless sets held
/// out by source.
///
/// One safetensors file holds the tuned layers (by the base model's tensor names), the head
/// (`harm.weight`, `harm.bias`), the stacker (`stack.weight`, `stack.bias`) and the thresholds
/// (`harm.threshold` for the head alone, `stack.threshold` for the decision); its metadata names
/// `frozen_layers` and `tuned_layers`.
public final class HarmClassifier: Sendable {
    public static let defaultPath = "data/detector/harm-classifier.safetensors"

    public let path: String
    public let embedder: SentenceEmbedder
    let head: LogisticHead
    let stacker: LogisticHead
    /// The stacked probability from which a text is harmful alone.
    public let threshold: Float
    /// The head's own probability from which a text is harmful, had it no lexicon beside it.
    public let headThreshold: Float

    public struct Score: Sendable {
        /// The fine-tuned encoder's sentence vector (unit length).
        public let vector: [Float]
        /// The head's probability alone.
        public let head: Float
        /// The decision's probability: head and lexicon together.
        public let probability: Float
    }

    public init(model folder: String, path: String = HarmClassifier.defaultPath, threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws {
        self.path = path
        embedder = try SentenceEmbedder(folder: folder, overrides: path, threads: threads)
        let tensors = try SafeTensors(path: path)
        let dimension = embedder.dimension
        func values(_ name: String, _ count: Int) throws -> [Float] { try tensors.floats(name, shape: [count]) }
        head = LogisticHead(weights: try values("harm.weight", dimension), bias: try values("harm.bias", 1)[0])
        stacker = LogisticHead(weights: try values("stack.weight", 1 + LexicalDetector.harmFeatureCount), bias: try values("stack.bias", 1)[0])
        threshold = try values("stack.threshold", 1)[0]
        headThreshold = try values("harm.threshold", 1)[0]
        guard (0...1).contains(threshold), (0...1).contains(headThreshold) else {
            throw LocatedError(path: path, line: nil, message: "the thresholds must lie between 0 and 1")
        }
    }

    /// The scores of many texts at once (embedded in batches on every thread).
    public func scores(_ texts: [String], lexical: LexicalDetector) -> [Score] {
        zip(texts, embedder.embed(texts)).map { text, vector in score(text, vector: vector, lexical: lexical) }
    }

    public func score(_ text: String, vector: [Float], lexical: LexicalDetector) -> Score {
        let logit = head.logit(vector)
        // The stacker sees the logit on the scale it was fitted on (a tenth), then the lexicon's features.
        let features = [logit / 10] + lexical.harmFeatures(text)
        return Score(vector: vector, head: 1 / (1 + expf(-logit)), probability: stacker.probability(features))
    }
}
