import LeaklessEmbedding
import Foundation
import LeaklessCore

/// A logistic regression over a feature vector: p = sigmoid(w . x + b). Trained by full-batch
/// gradient descent with momentum (matrix products through OpenBLAS) on the class-balanced log
/// loss plus an L2 penalty, from zero weights, so the same examples always give the same head.
public struct LogisticHead: Sendable, Equatable {
    public var weights: [Float]
    public var bias: Float

    public init(weights: [Float], bias: Float) {
        self.weights = weights
        self.bias = bias
    }

    /// w . x + b.
    public func logit(_ features: [Float]) -> Float {
        var z = bias
        for i in 0..<min(weights.count, features.count) { z += weights[i] * features[i] }
        return z
    }

    public func probability(_ features: [Float]) -> Float { 1 / (1 + expf(-logit(features))) }

    public static func train(_ features: [[Float]], labels: [Bool], l2: Float = 1e-4, iterations: Int = 800, rate: Float = 4) -> LogisticHead {
        let rows = features.count, dimension = features.first?.count ?? 0
        let positives = labels.filter { $0 }.count, negatives = labels.count - positives
        guard dimension > 0, positives > 0, negatives > 0 else { return LogisticHead(weights: Array(repeating: 0, count: dimension), bias: 0) }
        let matrix = features.flatMap { $0 }
        // Each class weighs half of the loss, whatever its size.
        let sampleWeight = labels.map { $0 ? 0.5 / Float(positives) : 0.5 / Float(negatives) }
        let target = labels.map { $0 ? Float(1) : 0 }
        var weights = [Float](repeating: 0, count: dimension), bias: Float = 0
        var velocity = [Float](repeating: 0, count: dimension), biasVelocity: Float = 0
        var scores = [Float](repeating: 0, count: rows), gradient = [Float](repeating: 0, count: dimension)
        let momentum: Float = 0.9
        for _ in 0..<iterations {
            // scores = X w; error_i = (sigmoid(score_i + b) - y_i) * weight_i; gradient = X^T error.
            scores = Matrix.multiply(matrix, rows: rows, columns: dimension, by: weights)
            var biasGradient: Float = 0
            for i in 0..<rows {
                scores[i] = (1 / (1 + expf(-(scores[i] + bias))) - target[i]) * sampleWeight[i]
                biasGradient += scores[i]
            }
            gradient = Matrix.multiply(matrix, rows: rows, columns: dimension, by: scores, transposed: true)
            for i in 0..<dimension {
                velocity[i] = momentum * velocity[i] - rate * (gradient[i] + l2 * weights[i])
                weights[i] += velocity[i]
            }
            biasVelocity = momentum * biasVelocity - rate * biasGradient
            bias += biasVelocity
        }
        return LogisticHead(weights: weights, bias: bias)
    }

    public var json: JSONValue {
        .object(["bias": .double(Double(bias)), "weights": .array(weights.map { .double(Double($0)) })])
    }

    public init(json: JSONValue?, path: String) throws {
        guard let bias = json?["bias"]?.doubleValue, let weights = json?["weights"]?.arrayValue?.compactMap({ $0.doubleValue }) else {
            throw LocatedError(path: path, line: nil, message: "a head needs 'bias' and 'weights'")
        }
        self.init(weights: weights.map(Float.init), bias: Float(bias))
    }
}
