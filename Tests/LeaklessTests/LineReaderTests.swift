import XCTest

@testable import Leakless
@testable import LeaklessCore

final class LineReaderTests: XCTestCase {
    /// Every JSONL reader skips the same blank lines and reads CRLF files as LF ones, with the
    /// file's own line numbers.
    func testBlankLinesAndCarriageReturnsAreReadAlikeEverywhere() throws {
        let folder = try temporaryFolder(self)
        let path = FileSystem.join(folder, "a.jsonl")
        try write("{\"kind\":\"x\",\"parents\":[]}\r\n \t\r\n\r\n{\"kind\":\"y\",\"parents\":[]}\r\n", to: path)
        let reader = try JSONLReader(path: path)
        var lines: [Int] = []
        while let (line, record) = try reader.nextRecord() {
            lines.append(line)
            XCTAssertNotNil(record["kind"]?.stringValue)
        }
        XCTAssertEqual(lines, [1, 4])
        XCTAssertTrue(LineReader.isBlank(Array(" \t\r".utf8)))
        XCTAssertFalse(LineReader.isBlank(Array(" x".utf8)))
        let store = ReviewStore(path: FileSystem.join(folder, "decisions.jsonl"))
        try write(" \r\n\t\r\n", to: store.path)
        XCTAssertEqual(try store.load().decisions.count, 0, "the review store skips the same blank lines")
    }
}
