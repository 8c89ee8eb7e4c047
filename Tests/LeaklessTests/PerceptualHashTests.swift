import XCTest

@testable import Leakless
@testable import LeaklessCore
@testable import LeaklessImaging

/// pHash, dHash and aHash against the values Python imagehash 4.3.2 (Pillow 13) gave for the
/// fixture images (`Fixtures/hashes/imagehash.json`): PNG in every colour type, interlaced and
/// 16-bit, JPEG baseline, progressive, grey and CMYK, and near-duplicate variants.
final class PerceptualHashTests: XCTestCase {
    struct Reference {
        let file: String
        let hashes: ImageHashes
    }

    func references() throws -> [Reference] {
        let folder = FileSystem.join(FileSystem.parent(of: fixture("small.png")), "hashes")
        let value = try JSONParser.parse(bytes: try FileSystem.read(FileSystem.join(folder, "imagehash.json")))
        return try value.objectValue!.keys.sorted().map { name in
            let entry = value.objectValue![name]!.objectValue!
            func hex(_ key: String) throws -> UInt64 { try XCTUnwrap(entry[key]?.stringValue.flatMap(ImageHashes.parse(hex:))) }
            return Reference(file: FileSystem.join(folder, name), hashes: ImageHashes(phash: try hex("phash"), dhash: try hex("dhash"), ahash: try hex("ahash")))
        }
    }

    func testCompatibleModeEqualsImagehashOnEveryFixture() throws {
        let hasher = PerceptualHasher()
        let all = try references()
        XCTAssertGreaterThan(all.count, 40)
        for reference in all {
            let found = try hasher.fingerprint(try FileSystem.read(reference.file), mode: .compatible)
            XCTAssertEqual(ImageHashes.hex(found.hashes.phash), ImageHashes.hex(reference.hashes.phash), "pHash of \(reference.file)")
            XCTAssertEqual(ImageHashes.hex(found.hashes.dhash), ImageHashes.hex(reference.hashes.dhash), "dHash of \(reference.file)")
            XCTAssertEqual(ImageHashes.hex(found.hashes.ahash), ImageHashes.hex(reference.hashes.ahash), "aHash of \(reference.file)")
        }
    }

    func testFastModeStaysCloseToImagehash() throws {
        let hasher = PerceptualHasher()
        for reference in try references() {
            let found = try hasher.fingerprint(try FileSystem.read(reference.file), mode: .fast)
            XCTAssertLessThanOrEqual(HammingSearch.distance(found.hashes.phash, reference.hashes.phash), 12, reference.file)
        }
    }

    func testLosslessReEncodingsHaveTheSamePixelDigest() throws {
        let folder = FileSystem.join(FileSystem.parent(of: fixture("small.png")), "hashes")
        let hasher = PerceptualHasher()
        func digest(_ name: String) throws -> String {
            try hasher.fingerprint(try FileSystem.read(FileSystem.join(folder, name)), mode: .compatible).pixelDigest
        }
        // The same pixels: plain, Adam7-interlaced, 16-bit, with an opaque alpha channel.
        let plain = try digest("coffee.png")
        XCTAssertEqual(try digest("coffee-interlaced.png"), plain)
        XCTAssertEqual(try digest("coffee-16bit.png"), plain)
        XCTAssertEqual(try digest("coffee-rgba.png"), plain)
        XCTAssertNotEqual(try digest("coffee-q85.jpg"), plain)
        // A grey PNG and the same grey pixels written as RGB.
        let grey = try ImageCodec.decode(try FileSystem.read(FileSystem.join(folder, "chelsea-grey.png")))
        let rgb = DecodedImage(width: grey.width, height: grey.height, channels: 3, pixels: grey.pixels.flatMap { [$0, $0, $0] })
        XCTAssertEqual(
            try hasher.fingerprint(try ImageCodec.encodePNG(rgb), mode: .compatible).pixelDigest, try digest("chelsea-grey.png"))
    }

    func testNearDuplicateVariantsMatchAndOtherPhotosDoNot() throws {
        let folder = FileSystem.join(FileSystem.parent(of: fixture("small.png")), "hashes")
        let hasher = PerceptualHasher()
        func hashes(_ name: String) throws -> ImageHashes {
            try hasher.fingerprint(try FileSystem.read(FileSystem.join(folder, name)), mode: .fast).hashes
        }
        let rule = NearDuplicateRule.standard.matches as (ImageHashes, ImageHashes) -> Bool
        let original = try hashes("chelsea.png")
        for variant in ["chelsea-blur.png", "chelsea-bright.jpg", "chelsea-crop.png", "chelsea-half.png", "chelsea-q85.jpg"] {
            XCTAssertTrue(rule(original, try hashes(variant)), variant)
        }
        for other in ["coffee.png", "astronaut.png", "rocket.png", "path.png"] {
            XCTAssertFalse(rule(original, try hashes(other)), other)
        }
    }

    func testEXIFOrientationTurnsTheImageInFastModeOnly() throws {
        let bytes = try FileSystem.read(fixture("rotated-exif6.jpg"))
        let upright = try ImageCodec.decode(bytes)
        let stored = try ImageCodec.decode(bytes, options: { var o = DecodeOptions(pixels: true); o.orient = false; return o }())
        XCTAssertEqual([upright.width, upright.height], [stored.image!.height, stored.image!.width])
        // Turned a quarter clockwise: the stored bottom-left corner is the upright top-left.
        let s = stored.image!
        XCTAssertEqual(Array(upright.pixels[0..<3]), Array(s.pixels[((s.height - 1) * s.width) * 3..<((s.height - 1) * s.width) * 3 + 3]))
        let fast = try PerceptualHasher().fingerprint(bytes, mode: .fast)
        XCTAssertEqual([fast.width, fast.height], [upright.width, upright.height])
    }

    func testResamplerKeepsAConstantPlaneConstant() {
        let plane = LumaPlane(width: 301, height: 97, pixels: [UInt8](repeating: 77, count: 301 * 97))
        let small = LanczosResampler().resize(plane, width: 32, height: 32)
        XCTAssertTrue(small.pixels.allSatisfy { $0 == 77 })
    }
}
