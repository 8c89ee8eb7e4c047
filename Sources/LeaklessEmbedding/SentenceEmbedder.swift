import COpenBLAS
import Foundation
import Synchronization
import LeaklessCore

/// Sentence embeddings as sentence-transformers computes them for all-MiniLM-L6-v2: WordPiece
/// tokens, the BERT encoder, the mean of the token vectors, unit length. Read from a
/// sentence-transformers model folder (`model.safetensors`, `vocab.txt`,
/// `sentence_bert_config.json`), with no Python at run time.
public final class SentenceEmbedder: Sendable {
    public let folder: String
    public let tokenizer: WordPieceTokenizer
    public let encoder: BertEncoder
    /// Threads that embed batches at once (each runs single-threaded OpenBLAS).
    public let threads: Int
    public var dimension: Int { encoder.shape.hidden }

    /// The folder `scripts/setup` unpacks the model into, below the project.
    public static let defaultFolder = "models/all-MiniLM-L6-v2"

    /// With `overrides` (a safetensors file of fine-tuned layers whose metadata names
    /// `frozen_layers` and `tuned_layers`), the encoder is the base model's first layers, then the
    /// tuned ones, and no more.
    public init(folder: String, overrides: String? = nil, threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws {
        self.folder = folder
        var maxLength = 256
        let config = FileSystem.join(folder, "sentence_bert_config.json")
        if FileSystem.exists(config), let length = try JSONParser.parse(bytes: try FileSystem.read(config))["max_seq_length"]?.intValue {
            maxLength = Int(length)
        }
        tokenizer = try WordPieceTokenizer(vocabularyFile: FileSystem.join(folder, "vocab.txt"), maxLength: maxLength)
        if let overrides {
            let tuned = try SafeTensors(path: overrides)
            guard let frozen = tuned.metadata["frozen_layers"].flatMap(Int.init), let count = tuned.metadata["tuned_layers"].flatMap(Int.init),
                frozen >= 0, count >= 0, frozen + count >= 1
            else {
                throw LocatedError(path: overrides, line: nil, message: "the metadata must name frozen_layers and tuned_layers (whole numbers)")
            }
            var shape = BertEncoder.Shape()
            shape.layers = frozen + count
            encoder = try BertEncoder(weights: FileSystem.join(folder, "model.safetensors"), shape: shape, overrides: tuned)
        } else {
            encoder = try BertEncoder(weights: FileSystem.join(folder, "model.safetensors"))
        }
        self.threads = max(1, threads)
        // Parallelism is across batches; OpenBLAS's own threads would only contend with them.
        openblas_set_num_threads(1)
    }

    /// Whether a model folder is there.
    public static func available(in folder: String) -> Bool {
        FileSystem.exists(FileSystem.join(folder, "model.safetensors")) && FileSystem.exists(FileSystem.join(folder, "vocab.txt"))
    }

    /// One unit vector per text, in order.
    public func embed(_ texts: [String], progress: (@Sendable (Int) -> Void)? = nil) -> [[Float]] {
        let sequences = texts.map { tokenizer.encode($0) }
        // Batches of similar length, about 2,048 tokens each.
        let order = sequences.indices.sorted { sequences[$0].count < sequences[$1].count }
        var batches: [[Int]] = []
        var current: [Int] = [], tokens = 0
        for index in order {
            if tokens + sequences[index].count > 2048, !current.isEmpty {
                batches.append(current)
                current = []
                tokens = 0
            }
            current.append(index)
            tokens += sequences[index].count
        }
        if !current.isEmpty { batches.append(current) }
        let encoder = self.encoder
        let planned = batches
        let counts = batches.map(\.count)
        let done = Mutex(0)
        let vectors = WorkerPool.map(count: batches.count, workers: threads, makeState: { BertEncoder.Scratch() }) { scratch, batch in
            let result = encoder.embed(planned[batch].map { sequences[$0] }, scratch: scratch)
            if let progress { progress(done.withLock { $0 += counts[batch]; return $0 }) }
            return result
        }
        var result = [[Float]](repeating: [], count: texts.count)
        for (batch, indices) in batches.enumerated() {
            for (position, index) in indices.enumerated() { result[index] = vectors[batch][position] }
        }
        return result
    }

    public func embed(_ text: String) -> [Float] { embed([text])[0] }

    public static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        var dot: Float = 0
        for i in 0..<min(a.count, b.count) { dot += a[i] * b[i] }
        return dot
    }
}
