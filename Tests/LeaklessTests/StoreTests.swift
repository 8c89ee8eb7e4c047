import XCTest

@testable import LeaklessCore

final class StoreTests: XCTestCase {
    func testReaderStreamsRecordsWithLineNumbersAndSkipsBlankLines() throws {
        let folder = try temporaryFolder(self)
        let path = FileSystem.join(folder, "in.jsonl")
        try write("{\"a\":1}\r\n\n  \n{\"a\":2}", to: path)
        let reader = try JSONLReader(path: path)
        let first = try reader.nextRecord()
        let second = try reader.nextRecord()
        XCTAssertEqual(first?.line, 1)
        XCTAssertEqual(second?.line, 4)
        XCTAssertEqual(second?.record["a"], 2)
        XCTAssertNil(try reader.nextRecord())
    }

    func testMalformedLineNamesFileAndLine() throws {
        let folder = try temporaryFolder(self)
        let path = FileSystem.join(folder, "bad.jsonl")
        try write("{\"a\":1}\n{\"a\":\n[1]\n", to: path)
        let reader = try JSONLReader(path: path)
        XCTAssertNotNil(try reader.nextRecord())
        XCTAssertThrowsError(try reader.nextRecord()) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(path):2: invalid JSON"), "\(error)")
        }
        let arrays = try JSONLReader(path: path)
        _ = try? arrays.nextRecord()
        _ = try? arrays.nextRecord()
        XCTAssertThrowsError(try arrays.nextRecord()) { error in
            XCTAssertEqual("\(error)", "\(path):3: expected a JSON object, found array")
        }
    }

    func testLongLinesAcrossChunkBoundaries() throws {
        let folder = try temporaryFolder(self)
        let path = FileSystem.join(folder, "long.jsonl")
        let long = String(repeating: "x", count: 200_000)
        try write("{\"s\":\"\(long)\"}\n{\"s\":\"y\"}\n", to: path)
        let reader = try JSONLReader(path: path)
        XCTAssertEqual(try reader.nextRecord()?.record.string("s")?.count, 200_000)
        XCTAssertEqual(try reader.nextRecord()?.record.string("s"), "y")
    }

    func testAtomicFileAppearsOnlyOnCommit() throws {
        let folder = try temporaryFolder(self)
        let path = FileSystem.join(folder, "out.txt")
        let file = try AtomicFile(path: path)
        try file.write("partial")
        XCTAssertFalse(FileSystem.exists(path))
        try file.commit()
        XCTAssertEqual(try FileSystem.readText(path), "partial")

        let abandoned = try AtomicFile(path: path)
        try abandoned.write("new content")
        abandoned.discard()
        XCTAssertEqual(try FileSystem.readText(path), "partial")
        XCTAssertEqual(try FileSystem.files(under: folder), ["out.txt"])
    }

    struct FailingStage: RecordStage {
        mutating func process(_ record: Record) throws -> [StageOutput] {
            if record["fail"] == true { throw RecordError("cannot handle this record") }
            return [.record(record), .reject(record, reason: "sample", detail: "kept and rejected")]
        }
    }

    func testAFailingStageLeavesNoOutputAndNamesTheLine() throws {
        let folder = try temporaryFolder(self)
        let input = FileSystem.join(folder, "in.jsonl")
        try write("{\"n\":1}\n{\"n\":2}\n{\"n\":3,\"fail\":true}\n", to: input)
        let runner = StageRunner(stageName: "test", schema: nil)
        let sink = try FileSink(output: FileSystem.join(folder, "out.jsonl"), rejects: FileSystem.join(folder, "rejects.jsonl"), stats: FileSystem.join(folder, "stats.json"))
        var stage = FailingStage()
        XCTAssertThrowsError(try runner.run(&stage, source: try JSONLReader(path: input), sink: sink)) { error in
            XCTAssertEqual("\(error)", "\(input):3: cannot handle this record")
        }
        XCTAssertEqual(try FileSystem.files(under: folder), ["in.jsonl"], "no output, rejects, stats or temporary file")
    }

    func testRunnerWritesOutputRejectsAndStats() throws {
        let folder = try temporaryFolder(self)
        let input = FileSystem.join(folder, "in.jsonl")
        try write("{\"n\":1}\n{\"n\":2}\n", to: input)
        let runner = StageRunner(stageName: "test", schema: nil)
        let sink = try FileSink(output: FileSystem.join(folder, "out.jsonl"), rejects: FileSystem.join(folder, "rejects.jsonl"), stats: FileSystem.join(folder, "stats.json"))
        var stage = FailingStage()
        let stats = try runner.run(&stage, source: try JSONLReader(path: input), sink: sink)
        XCTAssertEqual([stats.recordsIn, stats.recordsOut, stats.rejected], [2, 2, 2])
        XCTAssertEqual(stats.rejectsByReason, ["sample": 2])
        XCTAssertEqual(try StageStats.load(path: FileSystem.join(folder, "stats.json")).recordsOut, 2)
        let reject = try JSONLReader(path: FileSystem.join(folder, "rejects.jsonl")).nextRecord()!.record
        XCTAssertEqual(reject.string("reason"), "sample")
        XCTAssertEqual(reject["record"]?["n"], 1)
    }

    func testSchemaViolationFailsTheStage() throws {
        let folder = try temporaryFolder(self)
        let input = FileSystem.join(folder, "in.jsonl")
        try write("{\"n\":\"one\"}\n", to: input)
        let schema = RecordSchema(["type": "object", "required": ["n"], "properties": ["n": ["type": "integer"]]])
        let runner = StageRunner(stageName: "test", schema: schema)
        let sink = try FileSink(output: FileSystem.join(folder, "out.jsonl"), rejects: FileSystem.join(folder, "rejects.jsonl"), stats: nil)
        var stage = FailingStage()
        XCTAssertThrowsError(try runner.run(&stage, source: try JSONLReader(path: input), sink: sink)) { error in
            XCTAssertTrue("\(error)".contains("at $.n: expected integer, found string"), "\(error)")
        }
        XCTAssertEqual(try FileSystem.files(under: folder), ["in.jsonl"])
    }

    func testProgressGivesDoneOfTotalAndAnETA() {
        let progress = Progress(label: "t")
        Thread.sleep(forTimeInterval: 0.05)
        let line = progress.rate(done: 77, total: 228)
        XCTAssertTrue(line.hasPrefix("77/228 (33.8%), "), line)
        XCTAssertTrue(line.contains("/s, ETA "), line)
        XCTAssertFalse(progress.rate(done: 228, total: 228).contains("ETA"))
        XCTAssertTrue(progress.rate(done: 5, total: nil).hasPrefix("5, "))
    }
}
