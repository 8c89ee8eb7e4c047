import CCoreShims
import COpenBLAS
import Foundation
import LeaklessCore

/// A BERT encoder (Hugging Face's BertModel, post-layer-norm, absolute positions, exact GELU)
/// over weights read in place from a safetensors file, with matrix products through OpenBLAS.
/// The tokens of several sentences are packed into one matrix for the dense layers, and
/// attention runs per sentence, so nothing is spent on padding. Its weights are read in place
/// from the mapped file (views any thread may read); scratch space belongs to each caller.
public final class BertEncoder: Sendable {
    public struct Shape: Sendable {
        public var hidden = 384
        public var layers = 6
        public var heads = 12
        public var intermediate = 1536
        public var vocabulary = 30522
        public var positions = 512
        public var layerNormEpsilon: Float = 1e-12
        public init() {}
    }

    struct Dense: Sendable {
        let weight: TensorView
        let bias: TensorView
        let inputs: Int
        let outputs: Int
    }

    struct Norm: Sendable {
        let gamma: TensorView
        let beta: TensorView
    }

    struct Layer: Sendable {
        let query: Dense, key: Dense, value: Dense, attentionOutput: Dense
        let attentionNorm: Norm
        let intermediate: Dense, output: Dense
        let outputNorm: Norm
    }

    public let shape: Shape
    private let words: TensorView
    private let positions: TensorView
    private let tokenTypes: TensorView
    private let embeddingNorm: Norm
    private let layers: [Layer]

    /// The encoder of `path`'s weights; with `overrides`, each tensor that file holds (by its
    /// name without a model prefix) replaces the base model's, and `shape.layers` may keep fewer
    /// layers than the base has.
    public init(weights path: String, shape: Shape = Shape(), overrides: SafeTensors? = nil) throws {
        let tensors = try SafeTensors(path: path)
        self.shape = shape
        let h = shape.hidden
        // Some exports prefix every name with the model type.
        let prefix = tensors.tensors["bert.embeddings.word_embeddings.weight"] != nil ? "bert." : ""
        func floats(_ name: String, shape: [Int]) throws -> TensorView {
            if let overrides, overrides.tensors[name] != nil { return try overrides.view(name, shape: shape) }
            return try tensors.view(prefix + name, shape: shape)
        }
        func dense(_ name: String, _ inputs: Int, _ outputs: Int) throws -> Dense {
            Dense(weight: try floats(name + ".weight", shape: [outputs, inputs]),
                  bias: try floats(name + ".bias", shape: [outputs]), inputs: inputs, outputs: outputs)
        }
        func norm(_ name: String) throws -> Norm {
            Norm(gamma: try floats(name + ".weight", shape: [h]), beta: try floats(name + ".bias", shape: [h]))
        }
        words = try floats("embeddings.word_embeddings.weight", shape: [shape.vocabulary, h])
        positions = try floats("embeddings.position_embeddings.weight", shape: [shape.positions, h])
        tokenTypes = try floats("embeddings.token_type_embeddings.weight", shape: [2, h])
        embeddingNorm = try norm("embeddings.LayerNorm")
        layers = try (0..<shape.layers).map { index in
            let base = "encoder.layer.\(index)."
            return Layer(
                query: try dense(base + "attention.self.query", h, h), key: try dense(base + "attention.self.key", h, h),
                value: try dense(base + "attention.self.value", h, h), attentionOutput: try dense(base + "attention.output.dense", h, h),
                attentionNorm: try norm(base + "attention.output.LayerNorm"),
                intermediate: try dense(base + "intermediate.dense", h, shape.intermediate),
                output: try dense(base + "output.dense", shape.intermediate, h), outputNorm: try norm(base + "output.LayerNorm"))
        }
    }

    /// Scratch matrices of one thread, grown as needed.
    final class Scratch {
        var hidden: [Float] = [], query: [Float] = [], key: [Float] = [], value: [Float] = []
        var context: [Float] = [], projected: [Float] = [], intermediate: [Float] = [], scores: [Float] = []
    }

    /// The mean-pooled, L2-normalised embedding of each token sequence (each at most
    /// `shape.positions` long), computed as one packed batch.
    func embed(_ sequences: [[Int32]], scratch: Scratch) -> [[Float]] {
        let h = shape.hidden
        let total = sequences.reduce(0) { $0 + $1.count }
        func fit(_ array: inout [Float], _ count: Int) { if array.count < count { array = [Float](repeating: 0, count: count) } }
        fit(&scratch.hidden, total * h); fit(&scratch.query, total * h); fit(&scratch.key, total * h); fit(&scratch.value, total * h)
        fit(&scratch.context, total * h); fit(&scratch.projected, total * h); fit(&scratch.intermediate, total * shape.intermediate)
        let longest = sequences.map(\.count).max() ?? 0
        fit(&scratch.scores, longest * longest)

        // Embeddings: word + position + token type 0, then layer norm.
        scratch.hidden.withUnsafeMutableBufferPointer { hidden in
        words.withFloats { words in
        positions.withFloats { positions in
        tokenTypes.withFloats { tokenTypes in
            var row = 0
            for sequence in sequences {
                for (position, id) in sequence.enumerated() {
                    let word = Int(id) * h, place = position * h, out = row * h
                    for i in 0..<h { hidden[out + i] = words[word + i] + positions[place + i] + tokenTypes[i] }
                    row += 1
                }
            }
        }}}
            layerNorm(hidden.baseAddress!, rows: total, embeddingNorm)
        }
        for layer in layers { run(layer, sequences: sequences, total: total, scratch: scratch) }

        // Mean over each sequence's tokens, then unit length.
        var result: [[Float]] = []
        result.reserveCapacity(sequences.count)
        scratch.hidden.withUnsafeBufferPointer { hidden in
            var row = 0
            for sequence in sequences {
                var sum = [Float](repeating: 0, count: h)
                for r in row..<row + sequence.count { for i in 0..<h { sum[i] += hidden[r * h + i] } }
                row += sequence.count
                var norm: Float = 0
                for i in 0..<h {
                    sum[i] /= Float(sequence.count)
                    norm += sum[i] * sum[i]
                }
                let scale = 1 / max(norm.squareRoot(), 1e-12)
                result.append(sum.map { $0 * scale })
            }
        }
        return result
    }

    private func run(_ layer: Layer, sequences: [[Int32]], total: Int, scratch: Scratch) {
        let h = shape.hidden, heads = shape.heads, size = h / heads
        let scale = 1 / Float(size).squareRoot()
        scratch.hidden.withUnsafeMutableBufferPointer { hidden in
        scratch.query.withUnsafeMutableBufferPointer { query in
        scratch.key.withUnsafeMutableBufferPointer { key in
        scratch.value.withUnsafeMutableBufferPointer { value in
        scratch.context.withUnsafeMutableBufferPointer { context in
        scratch.projected.withUnsafeMutableBufferPointer { projected in
        scratch.intermediate.withUnsafeMutableBufferPointer { intermediate in
        scratch.scores.withUnsafeMutableBufferPointer { scores in
            let x = hidden.baseAddress!
            linear(x, rows: total, layer.query, into: query.baseAddress!)
            linear(x, rows: total, layer.key, into: key.baseAddress!)
            linear(x, rows: total, layer.value, into: value.baseAddress!)
            var start = 0
            for sequence in sequences {
                let n = sequence.count
                for head in 0..<heads {
                    let offset = start * h + head * size
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(size), scale,
                                query.baseAddress! + offset, Int32(h), key.baseAddress! + offset, Int32(h), 0, scores.baseAddress!, Int32(n))
                    softmaxRows(scores.baseAddress!, rows: n, columns: n)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(size), Int32(n), 1,
                                scores.baseAddress!, Int32(n), value.baseAddress! + offset, Int32(h), 0, context.baseAddress! + offset, Int32(h))
                }
                start += n
            }
            // Attention output, residual, norm.
            linear(context.baseAddress!, rows: total, layer.attentionOutput, into: projected.baseAddress!)
            for i in 0..<total * h { projected[i] += x[i] }
            layerNorm(projected.baseAddress!, rows: total, layer.attentionNorm)
            // Feed-forward with exact GELU, residual, norm.
            linear(projected.baseAddress!, rows: total, layer.intermediate, into: intermediate.baseAddress!)
            leakless_gelu(intermediate.baseAddress!, total * shape.intermediate)
            linear(intermediate.baseAddress!, rows: total, layer.output, into: x)
            for i in 0..<total * h { x[i] += projected[i] }
            layerNorm(x, rows: total, layer.outputNorm)
        }}}}}}}}
    }

    /// y = x W^T + b, for `rows` rows of x.
    private func linear(_ x: UnsafePointer<Float>, rows: Int, _ dense: Dense, into y: UnsafeMutablePointer<Float>) {
        dense.bias.withFloats { bias in
            for r in 0..<rows { (y + r * dense.outputs).update(from: bias.baseAddress!, count: dense.outputs) }
        }
        dense.weight.withFloats { weight in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(dense.outputs), Int32(dense.inputs), 1,
                        x, Int32(dense.inputs), weight.baseAddress!, Int32(dense.inputs), 1, y, Int32(dense.outputs))
        }
    }

    private func layerNorm(_ x: UnsafeMutablePointer<Float>, rows: Int, _ norm: Norm) {
        let h = shape.hidden
        norm.gamma.withFloats { gamma in
        norm.beta.withFloats { beta in
        for r in 0..<rows {
            let row = x + r * h
            var mean: Float = 0
            for i in 0..<h { mean += row[i] }
            mean /= Float(h)
            var variance: Float = 0
            for i in 0..<h {
                let d = row[i] - mean
                variance += d * d
            }
            let inverse = 1 / (variance / Float(h) + shape.layerNormEpsilon).squareRoot()
            for i in 0..<h { row[i] = (row[i] - mean) * inverse * gamma[i] + beta[i] }
        }
        }}
    }

    private func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        for r in 0..<rows {
            let row = x + r * columns
            var largest = -Float.infinity
            for i in 0..<columns { largest = max(largest, row[i]) }
            var sum: Float = 0
            for i in 0..<columns {
                row[i] = expf(row[i] - largest)
                sum += row[i]
            }
            let inverse = 1 / sum
            for i in 0..<columns { row[i] *= inverse }
        }
    }
}
