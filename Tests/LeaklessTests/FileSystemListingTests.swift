import Foundation
import XCTest

@testable import LeaklessCore

final class FileSystemListingTests: XCTestCase {
    /// The listing a collection's key is made of: every entry that is not a folder (hidden ones
    /// and links too, links not followed), with the size and modification second Foundation's
    /// attributes give, so keys made before stay the same.
    func testTheListingIsWhatFoundationsAttributesSay() throws {
        let folder = try temporaryFolder(self)
        try FileManager.default.createDirectory(atPath: FileSystem.join(folder, "a/b"), withIntermediateDirectories: true)
        try AtomicFile.write("one", to: FileSystem.join(folder, "top.txt"))
        try AtomicFile.write("hidden!", to: FileSystem.join(folder, "a/.hidden"))
        try AtomicFile.write(String(repeating: "x", count: 5000), to: FileSystem.join(folder, "a/b/deep.png"))
        try FileManager.default.createSymbolicLink(atPath: FileSystem.join(folder, "a/link"), withDestinationPath: "b")
        var expected: [String] = []
        let enumerator = FileManager.default.enumerator(atPath: folder)!
        while let relative = enumerator.nextObject() as? String {
            guard let attributes = enumerator.fileAttributes, attributes[.type] as? FileAttributeType != .typeDirectory else { continue }
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            expected.append("\(relative)\t\(attributes[.size] as? Int ?? 0)\t\(Int(modified))")
        }
        let listing = try FileSystem.listing(under: folder).map { "\($0.path)\t\($0.size)\t\($0.modified)" }
        XCTAssertEqual(listing.sorted(), expected.sorted())
        XCTAssertEqual(listing.count, 4, "\(listing)")
        XCTAssertThrowsError(try FileSystem.listing(under: FileSystem.join(folder, "missing"))) { error in
            XCTAssertTrue("\(error)".contains("missing"), "\(error)")
        }
    }
}
