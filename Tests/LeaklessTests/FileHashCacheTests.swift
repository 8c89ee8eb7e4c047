import Foundation
import XCTest

@testable import LeaklessCore

/// Content hashes remembered by file status: the same hashes as reading the bytes, and never a
/// stale one after a change.
final class FileHashCacheTests: XCTestCase {
    func testRememberedHashesFollowEveryChange() throws {
        let folder = try temporaryFolder(self)
        let file = FileSystem.join(folder, "model.bin")
        try AtomicFile.write(Array(repeating: UInt8(7), count: 3_000_000), to: file)
        let collection = FileSystem.join(folder, "collection")
        try write("a", to: FileSystem.join(collection, "deep/a.png"))
        // Old enough to be remembered (a file changed in the last two seconds is always read).
        Thread.sleep(forTimeInterval: 2.1)
        let cache = FileHashCache()
        let first = try cache.hash(ofFile: file)
        XCTAssertEqual(first, ContentHash(of: try FileSystem.read(file)), "read in chunks, the same hash")
        XCTAssertEqual(try cache.hash(ofFile: file), first)
        var listed = 0
        let listing = { () throws -> String in listed += 1; return "listing \(listed)" }
        XCTAssertEqual(try cache.listingHash(of: collection, compute: listing), "listing 1")
        XCTAssertEqual(try cache.listingHash(of: collection, compute: listing), "listing 1", "no folder changed: not listed again")

        // Kept in a file and read back by another process's cache.
        let store = FileSystem.join(folder, "cache/file-hashes.json")
        try cache.save(to: store)
        let other = FileHashCache()
        other.load(from: store)
        XCTAssertEqual(try other.listingHash(of: collection, compute: { "listed again" }), "listing 1")

        // The same size, other bytes, at once: a new hash.
        var bytes = try FileSystem.read(file)
        bytes[1_500_000] = 8
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: file))
        handle.write(Data(bytes))
        try handle.close()
        XCTAssertNotEqual(try cache.hash(ofFile: file), first)
        XCTAssertEqual(try cache.hash(ofFile: file), ContentHash(of: bytes))
        // A file added deep in the collection: listed again.
        try write("b", to: FileSystem.join(collection, "deep/b.png"))
        XCTAssertEqual(try cache.listingHash(of: collection, compute: listing), "listing 2")
    }
}
