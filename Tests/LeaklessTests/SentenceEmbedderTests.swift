import Foundation
import XCTest

@testable import LeaklessCore
@testable import LeaklessEmbedding

/// The Swift embeddings against sentence-transformers' own (made once by
/// scripts/make-embedding-fixtures.py and committed): 223 sentences from the development
/// benchmarks, accents, CJK, an emoji, an over-long word and a text cut at 256 tokens.
final class SentenceEmbedderTests: XCTestCase {
    static let modelFolder = FileSystem.join(projectRoot, SentenceEmbedder.defaultFolder)

    func embedder(threads: Int = 2) throws -> SentenceEmbedder {
        guard SentenceEmbedder.available(in: Self.modelFolder) else {
            XCTFail("the embedding model is not in \(Self.modelFolder): run ./scripts/setup")
            throw XCTSkip("no model")
        }
        return try SentenceEmbedder(folder: Self.modelFolder, threads: threads)
    }

    func testEmbeddingsMatchSentenceTransformers() throws {
        let folder = FileSystem.join(projectRoot, "Tests/LeaklessTests/Fixtures/embeddings")
        let sentences = try FileSystem.readText(FileSystem.join(folder, "sentences.txt")).split(separator: "\n").map(String.init)
        let bytes = try FileSystem.read(FileSystem.join(folder, "reference.f32"))
        XCTAssertEqual(bytes.count, sentences.count * 384 * 4)
        let reference: [Float] = bytes.withUnsafeBytes { raw in (0..<bytes.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } }
        for threads in [1, 2] {
            let vectors = try embedder(threads: threads).embed(sentences)
            var worst: Float = 1
            for (index, vector) in vectors.enumerated() {
                let cosine = SentenceEmbedder.cosine(vector, Array(reference[index * 384..<(index + 1) * 384]))
                worst = min(worst, cosine)
                XCTAssertGreaterThanOrEqual(cosine, 0.9999, "sentence \(index + 1): \(sentences[index].prefix(60))")
            }
            XCTAssertGreaterThanOrEqual(worst, 0.9999)
        }
    }

    func testTokenizerFollowsBERT() throws {
        let tokenizer = try embedder().tokenizer
        // [CLS] hello , world ! cafe naive [SEP]: lower-cased, accents stripped, punctuation split.
        XCTAssertEqual(tokenizer.encode("Hello, world! Café naïve"), [101, 7592, 1010, 2088, 999, 7668, 15743, 102])
        XCTAssertEqual(tokenizer.encode("").count, 2)
        XCTAssertEqual(tokenizer.encode(String(repeating: "word ", count: 1000)).count, 256, "cut to the model's length")
        XCTAssertEqual(tokenizer.encode(String(repeating: "x", count: 101)), [101, tokenizer.unknown, 102], "a word over 100 characters")
    }

    func testABrokenModelFileIsALocatedError() throws {
        let folder = try temporaryFolder(self)
        try write("not a model", to: FileSystem.join(folder, "model.safetensors"))
        XCTAssertThrowsError(try SafeTensors(path: FileSystem.join(folder, "model.safetensors"))) { error in
            XCTAssertTrue("\(error)".contains("does not fit in the file"), "\(error)")
        }
    }
}
