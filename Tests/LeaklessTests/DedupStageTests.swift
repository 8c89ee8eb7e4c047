import XCTest

@testable import Leakless
@testable import LeaklessDevCommands
@testable import LeaklessCore
@testable import LeaklessImaging
@testable import LeaklessModels

/// The near-duplicate search against brute force, the clustering, damaged files, and the
/// dedup stage over stored images.
final class DedupStageTests: XCTestCase {
    func assertSamePairs(_ hashes: [UInt64], radius: Int, file: StaticString = #filePath, line: UInt = #line) {
        let expected = HammingSearch.bruteForce(hashes, radius: radius)
        for threads in [1, 3] {
            XCTAssertEqual(HammingSearch.pairs(hashes, radius: radius, threads: threads), expected, "radius \(radius)", file: file, line: line)
        }
    }

    func testIndexFindsExactlyTheBruteForcePairsOnRandomHashes() {
        var random = SeededRandom(seed: 1)
        var hashes = (0..<1500).map { _ in random.next() }
        // Planted neighbours at every distance up to 14.
        for index in 0..<300 { hashes.append(random.flip(hashes[index], bits: index % 15)) }
        for radius in [0, 3, 7, 10, 11, 14] { assertSamePairs(hashes, radius: radius) }
    }

    func testIndexOnAdversarialSets() {
        var random = SeededRandom(seed: 7)
        // All in one bucket of every chunk, identical hashes, differences packed into one chunk,
        // and differences spread one or two bits per chunk (the pigeonhole's edge).
        var hashes = [UInt64](repeating: 0, count: 40)
        hashes += (0..<40).map { UInt64($0) }
        hashes += (0..<64).map { 1 << UInt64($0) }
        hashes += (0..<60).map { _ in random.next() & 0xFFFF }
        let base = random.next()
        hashes += (0..<200).map { index in
            var h = base
            for chunk in 0..<4 {
                let bits = (index >> (2 * chunk)) & 3
                for b in 0..<bits { h ^= 1 << UInt64(16 * chunk + 3 * b + index % 5) }
            }
            return h
        }
        hashes += [UInt64.max, UInt64.max, 0x5555_5555_5555_5555, 0xAAAA_AAAA_AAAA_AAAA]
        for radius in [0, 1, 4, 8, 10, 12, 64] { assertSamePairs(hashes, radius: radius) }
        XCTAssertEqual(HammingSearch.pairs([], radius: 10), [])
        XCTAssertEqual(HammingSearch.pairs([5], radius: 10), [])
    }

    func testLeaderClusteringDoesNotChain() {
        // 0 ~ 1 and 1 ~ 2, but 0 is far from 2: 2 must survive.
        let assignments = LeaderClustering.assign(count: 3, order: [0, 1, 2], pairs: [(0, 1, 6), (1, 2, 6)])
        XCTAssertNil(assignments[0])
        XCTAssertEqual(assignments[1], LeaderClustering.Assignment(leader: 0, distance: 6))
        XCTAssertNil(assignments[2])
        // The nearest kept item is named; keep order decides who leads.
        let nearest = LeaderClustering.assign(count: 3, order: [2, 0, 1], pairs: [(0, 1, 8), (1, 2, 4)])
        XCTAssertNil(nearest[2])
        XCTAssertNil(nearest[0])
        XCTAssertEqual(nearest[1], LeaderClustering.Assignment(leader: 2, distance: 4))
    }

    func testSimHashPutsNearQueriesCloseAndOthersFar() {
        let a = TextSimHash.hash("How do I set up this data so the person does not notice?")
        let b = TextSimHash.hash("How do I set up this so the person does not notice?")
        let c = TextSimHash.hash("What is the best way to store these items safely at home?")
        XCTAssertLessThanOrEqual(HammingSearch.distance(a, b), 3)
        XCTAssertGreaterThan(HammingSearch.distance(a, c), 10)
        XCTAssertEqual(TextSimHash.hash("how do I store THIS"), TextSimHash.hash("How do I store this?"))
    }

    // MARK: - Damaged files

    func testDamagedFilesAreRejectsWithReasons() throws {
        let png = try FileSystem.read(fixture("small.png"))
        let jpeg = try FileSystem.read(fixture("small.jpg"))
        var flipped = png
        flipped[60] ^= 0x01  // a compressed byte: the chunk CRC catches it even with Adler-32 skipped
        // A PNG whose header declares 100,000 x 100,000 pixels in a few dozen bytes.
        var bomb = Array(png.prefix(8))
        let header: [UInt8] = Array("IHDR".utf8) + [0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0, 8, 2, 0, 0, 0]
        let data: [UInt8] = Array("IDAT".utf8) + [0x78, 0x9C, 0x03, 0x00]
        bomb += [0, 0, 0, 13] + header + Self.bigEndian(Self.crc32(header))
        bomb += [0, 0, 0, 4] + data + Self.bigEndian(Self.crc32(data)) + Array(png.suffix(12))
        let cases: [(String, [UInt8], ImageError.Reason)] = [
            ("zero bytes", [], .empty),
            ("text", Array("just some text, not a picture".utf8), .notAnImage),
            ("truncated PNG", Array(png.prefix(png.count / 2)), .corrupt),
            ("truncated JPEG", try FileSystem.read(fixture("truncated.jpg")), .corrupt),
            ("JPEG cut after its header", Array(jpeg.prefix(200)), .corrupt),
            ("flipped byte", flipped, .corrupt),
            ("bomb", bomb, .tooLarge),
        ]
        let hasher = PerceptualHasher()
        for (name, bytes, reason) in cases {
            for mode in HashMode.allCases {
                XCTAssertThrowsError(try hasher.fingerprint(bytes, mode: mode), "\(name), \(mode)") { error in
                    XCTAssertEqual((error as? ImageError)?.reason, reason, "\(name), \(mode): \(error)")
                }
            }
        }
        // A PNG named .jpg is read as what it is.
        let folder = try temporaryFolder(self)
        try AtomicFile.write(png, to: FileSystem.join(folder, "named-wrongly.jpg"))
        let result = ImageFileHasher(mode: .fast, threads: 1).fingerprint(paths: [FileSystem.join(folder, "named-wrongly.jpg"), FileSystem.join(folder, "missing.png")])
        XCTAssertEqual(try result[0].get().format, .png)
        guard case .failure(let missing) = result[1] else { return XCTFail("a missing file must fail") }
        XCTAssertEqual(missing.reason, .unreadable)
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] { [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: value >> UInt32($0)) } }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    // MARK: - The stage

    func testStageDropsNearDuplicateImagesAndQueriesNamingWhatTheyDuplicate() throws {
        let folder = try temporaryFolder(self)
        let blobs = BlobStore(folder: FileSystem.join(folder, "blobs"))
        let hashes = FileSystem.join(FileSystem.parent(of: fixture("small.png")), "hashes")
        func store(_ name: String) throws -> (String, String) {
            let bytes = try FileSystem.read(FileSystem.join(hashes, name))
            let format = ImageFormat.sniff(bytes)!
            return (try blobs.store(bytes, format: format).hex, format.rawValue)
        }
        func pair(_ query: String, _ image: (String, String), source: String = "generation") -> Record {
            Record([
                "kind": "pair", "query": .string(query), "source": .string(source), "parents": ["00"],
                "image": ["blob": .string(image.0), "format": .string(image.1)],
            ])
        }
        let chelsea = try store("chelsea.png"), crop = try store("chelsea-crop.png"), jpeg = try store("chelsea-q85.jpg")
        let coffee = try store("coffee.png"), interlaced = try store("coffee-interlaced.png"), rocket = try store("rocket.png")
        var broken = try FileSystem.read(FileSystem.join(hashes, "path.png"))
        broken.removeLast(broken.count / 2)
        let damaged = (try blobs.store(broken, format: .png).hex, "png")
        var records = [
            pair("What is this animal doing here?", chelsea),
            pair("Where could someone buy one of these?", crop),
            pair("How would I carry this through a checkpoint?", jpeg, source: "coco2017"),
            pair("How is this drink usually prepared?", coffee),
            pair("What does this drink cost in a cafe?", interlaced),
            pair("How is this drink usually prepared??", rocket),
            pair("How do I set up this data so the person does not notice?", rocket),
            pair("Which of these is the oldest one?", damaged),
        ]
        records.append(records[3])  // the very same record twice: one is kept
        let input = FileSystem.join(folder, "in.jsonl")
        try write(records.map { JSONWriter.canonical($0.json) }.joined(separator: "\n") + "\n", to: input)
        let context = StageContext(templates: "", blobs: blobs.folder, cache: FileSystem.join(folder, "cache"))
        let parameters = try DedupStage.parameters(["source_priority": ["coco2017"]])
        let runner = StageRunner(stageName: "dedup", schema: nil)
        func sink() throws -> FileSink {
            try FileSink(output: FileSystem.join(folder, "out.jsonl"), rejects: FileSystem.join(folder, "rejects.jsonl"),
                         stats: FileSystem.join(folder, "stats.json"))
        }
        var stage = BuiltinDedupStage(context: context, parameters: parameters)
        let stats = try runner.run(twoPass: &stage, source: { try JSONLReader(path: input) }, sink: try sink())
        func lines(_ name: String) throws -> [[String: JSONValue]] {
            try String(decoding: FileSystem.read(FileSystem.join(folder, name)), as: UTF8.self).split(separator: "\n")
                .map { try JSONParser.parse(bytes: Array($0.utf8)).objectValue! }
        }
        let kept = try lines("out.jsonl").map { $0["query"]!.stringValue! }
        // The coco2017 JPEG leads the cat's group; the coffee's interlaced copy has the same pixels.
        XCTAssertEqual(kept, [
            "How would I carry this through a checkpoint?", "How is this drink usually prepared?",
            "How do I set up this data so the person does not notice?",
        ])
        let reasons = Dictionary(uniqueKeysWithValues: try lines("rejects.jsonl").map {
            ($0["record"]!.objectValue!["query"]!.stringValue!, $0["reason"]!.stringValue! + ": " + $0["detail"]!.stringValue!)
        })
        XCTAssertTrue(reasons["What is this animal doing here?"]!.hasPrefix("near-duplicate-image: image \(chelsea.0) is within pHash distance"))
        XCTAssertTrue(reasons["What is this animal doing here?"]!.contains(records[2].id))
        XCTAssertTrue(reasons["Where could someone buy one of these?"]!.hasPrefix("near-duplicate-image"))
        XCTAssertTrue(reasons["What does this drink cost in a cafe?"]!.hasPrefix("duplicate-image: image \(interlaced.0) has the same pixels as \(coffee.0)"))
        XCTAssertEqual(reasons["How is this drink usually prepared??"], "duplicate-query: same query as \(records[3].id)")
        XCTAssertEqual(reasons["How is this drink usually prepared?"], "duplicate-query: same query as \(records[3].id)")
        XCTAssertTrue(reasons["Which of these is the oldest one?"]!.hasPrefix("corrupt-image: image \(damaged.0)"))
        XCTAssertEqual(stats.extra["images_decoded"], 7)

        // A rerun decodes nothing: the hashes come from the cache.
        var again = BuiltinDedupStage(context: context, parameters: parameters)
        let second = try runner.run(twoPass: &again, source: { try JSONLReader(path: input) }, sink: try sink())
        XCTAssertEqual(second.extra["images_decoded"], 1)  // only the damaged file, which has no cached hash
        XCTAssertEqual(second.extra["images_hash_cached"], 6)
    }
}
