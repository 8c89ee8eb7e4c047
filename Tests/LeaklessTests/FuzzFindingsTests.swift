import Foundation
import XCTest

@testable import Leakless
@testable import LeaklessCore
@testable import LeaklessImaging
@testable import LeaklessModels

/// Every input the fuzzers (`scripts/fuzz`) found a crash with, kept in
/// `Fixtures/fuzz/<target>/`, now gives a located error instead.
final class FuzzFindingsTests: XCTestCase {
    func inputs(_ target: String) throws -> [(String, [UInt8])] {
        let folder = FileSystem.join(projectRoot, "Tests/LeaklessTests/Fixtures/fuzz", target)
        guard FileSystem.isDirectory(folder) else { return [] }
        return try FileSystem.files(under: folder).map { ($0, try FileSystem.read(FileSystem.join(folder, $0))) }
    }

    /// A header naming one column twice crashed the CSV reader.
    func testCSVFindings() throws {
        let found = try inputs("FuzzCSV")
        XCTAssertFalse(found.isEmpty)
        for (name, bytes) in found {
            XCTAssertThrowsError(try CSVTable(path: name, text: String(decoding: bytes, as: UTF8.self)), name) { error in
                XCTAssertTrue(error is LocatedError, "\(error)")
            }
        }
        XCTAssertThrowsError(try CSVTable(path: "t.csv", text: "a,b,a\n1,2,3\n")) { error in
            XCTAssertEqual("\(error)", "t.csv:1: the header names the column 'a' twice")
        }
    }

    func testReplyFindings() throws {
        for (_, bytes) in try inputs("FuzzReply") {
            _ = StructuredReply.extractJSON(String(decoding: bytes, as: UTF8.self))
        }
    }

    func testImageFindings() throws {
        for (name, bytes) in try inputs("FuzzImageDecode") {
            XCTAssertThrowsError(try ImageCodec.decode(bytes), name)
        }
    }
}
