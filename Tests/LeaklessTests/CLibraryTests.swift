import XCTest

@testable import LeaklessCore
@testable import LeaklessImaging
@testable import LeaklessNetwork

/// libpng, libjpeg-turbo and libcurl through their wrappers (xxhash: CanonicalJSONTests).
final class CLibraryTests: XCTestCase {
    func testDecodesPNGAndJPEGAlike() throws {
        let png = try ImageCodec.decode(try FileSystem.read(fixture("small.png")))
        let jpeg = try ImageCodec.decode(try FileSystem.read(fixture("small.jpg")))
        XCTAssertEqual([png.width, png.height, png.channels], [24, 16, 3])
        XCTAssertEqual([jpeg.width, jpeg.height, jpeg.channels], [24, 16, 3])
        // JPEG is lossy: close to the PNG, not equal.
        let difference = zip(png.pixels, jpeg.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +) / png.pixels.count
        XCTAssertLessThan(difference, 12)
        let grey = try ImageCodec.decode(try FileSystem.read(fixture("grey.jpg")))
        XCTAssertEqual(grey.channels, 1)
        let scaled = try ImageCodec.decodeJPEG(try FileSystem.read(fixture("small.jpg")), scaleDenominator: 8)
        XCTAssertEqual([scaled.width, scaled.height], [3, 2])
    }

    func testTransparencyIsCompositedOntoWhite() throws {
        let image = try ImageCodec.decode(try FileSystem.read(fixture("transparent.png")))
        XCTAssertTrue(image.pixels.allSatisfy { $0 == 255 })
    }

    func testPNGRoundTrip() throws {
        let original = try ImageCodec.decode(try FileSystem.read(fixture("small.jpg")))
        XCTAssertEqual(try ImageCodec.decode(try ImageCodec.encodePNG(original)), original)
        // Noise does not compress: the one-pass buffer must still hold it.
        var random = SystemRandomNumberGenerator()
        let noise = DecodedImage(width: 257, height: 129, channels: 3, pixels: (0..<(257 * 129 * 3)).map { _ in UInt8.random(in: 0...255, using: &random) })
        XCTAssertEqual(try ImageCodec.decode(try ImageCodec.encodePNG(noise)), noise)
    }

    func testBadFilesAreErrorsWithReasonsNotCrashes() throws {
        let cases: [(String, ImageError.Reason)] = [
            ("truncated.jpg", .corrupt), ("not-an-image.png", .notAnImage),
        ]
        for (name, reason) in cases {
            XCTAssertThrowsError(try ImageCodec.decode(try FileSystem.read(fixture(name))), name) { error in
                XCTAssertEqual((error as? ImageError)?.reason, reason, "\(name): \(error)")
            }
        }
        XCTAssertThrowsError(try ImageCodec.decode([])) { XCTAssertEqual(($0 as? ImageError)?.reason, .empty) }
        var png = try FileSystem.read(fixture("small.png"))
        png[40] ^= 0xFF  // inside the image data: CRC and inflate catch it
        XCTAssertThrowsError(try ImageCodec.decode(png))
        XCTAssertThrowsError(try ImageCodec.decode(try FileSystem.read(fixture("small.png")), pixelLimit: 100)) { error in
            XCTAssertEqual((error as? ImageError)?.reason, .tooLarge)
        }
    }

    func testCurlFetchesAFileURLAndReportsAFailure() throws {
        let client = try CurlHTTP()
        let response = try client.perform(HTTPRequest(url: "file://" + fixture("small.png")))
        XCTAssertEqual(response.body, try FileSystem.read(fixture("small.png")))
        XCTAssertThrowsError(try client.perform(HTTPRequest(url: "http://127.0.0.1:1/v1/models", timeout: 5))) { error in
            XCTAssertTrue("\(error)".hasPrefix("GET http://127.0.0.1:1/v1/models: "), "\(error)")
        }
        XCTAssertEqual(CurlHTTP.redacted("https://user:secret@host/v1?key=abc"), "https://host/v1")
    }
}
