import Foundation
import XCTest

@testable import Leakless
@testable import LeaklessCore
import LeaklessEmbedding

final class TextEmbeddingLogTests: XCTestCase {
    /// Vectors kept by one process are found by the next; a torn entry at the end (a killed
    /// writer) is never read as a vector, and the next write starts the file afresh.
    func testKeptVectorsAreSharedAndATornEntryIsDropped() throws {
        let embedder = try SentenceEmbedder(folder: FileSystem.join(projectRoot, SentenceEmbedder.defaultFolder), threads: 1)
        let folder = try temporaryFolder(self)
        let log = try TextEmbeddingLog(folder: folder, embedder: embedder)
        let vector = embedder.embed("a photo of a kitchen knife")
        log.keep("a photo of a kitchen knife", vector)
        log.keep("a red bicycle", embedder.embed("a red bicycle"))
        let again = try TextEmbeddingLog(folder: folder, embedder: embedder)
        XCTAssertEqual(again.vector("a photo of a kitchen knife"), vector, "the same bits")
        XCTAssertNil(again.vector("a blue bicycle"))

        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: log.path))
        handle.seekToEndOfFile()
        handle.write(Data([1, 2, 3]))
        try handle.close()
        let torn = try TextEmbeddingLog(folder: folder, embedder: embedder)
        XCTAssertEqual(torn.vector("a red bicycle"), embedder.embed("a red bicycle"), "whole entries before the torn one are read")
        torn.keep("a green tent", embedder.embed("a green tent"))
        XCTAssertEqual(try FileSystem.read(log.path).count, 16 + embedder.dimension * 4, "started afresh with the new entry")
        XCTAssertNotNil(try TextEmbeddingLog(folder: folder, embedder: embedder).vector("a green tent"))
    }

    func testScoreKernels() {
        XCTAssertEqual(ScoreKernels.threshold(ofTop: 2, in: [0.1, 0.9, 0.5, 0.9]), 0.9)
        XCTAssertEqual(ScoreKernels.threshold(ofTop: 3, in: [0.1, 0.9, 0.5, 0.9]), 0.5)
        XCTAssertEqual(ScoreKernels.threshold(ofTop: 9, in: [0.1, 0.9]), 0.1)
        XCTAssertEqual(ScoreKernels.indices(atLeast: 0.5, in: [0.1, 0.9, 0.5, 0.9]), [1, 2, 3])
        XCTAssertEqual(ScoreKernels.geometricMeanOfPositives([[0.25, -1, 4]]), [0.25, 0, 4])
        XCTAssertEqual(ScoreKernels.geometricMeanOfPositives([[0.25, -1, 4], [1, 1, 4]]), [0.5, 0, 4])
        XCTAssertEqual(ScoreKernels.roundedToMillionths([0.12345678]), [Float(0.123457)])
    }
}
