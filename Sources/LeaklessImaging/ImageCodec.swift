import CJPEG
import CLeaklessShims
import CPNG

/// Decoding (libpng, libjpeg-turbo) and PNG encoding. Alpha is composited onto white, the same
/// background for every image, so a transparent PNG decodes the same wherever it is used.
public enum ImageCodec {
    /// Images declaring more pixels than this are refused before any pixel buffer is allocated.
    public static let defaultPixelLimit: UInt64 = 100_000_000

    public static func decode(_ bytes: [UInt8], pixelLimit: UInt64 = defaultPixelLimit) throws -> DecodedImage {
        guard !bytes.isEmpty else { throw ImageError(reason: .empty, message: "the file is empty") }
        switch ImageFormat.sniff(bytes) {
        case .png: return try decodePNG(bytes, pixelLimit: pixelLimit)
        case .jpeg: return try decodeJPEG(bytes, scaleDenominator: 1, pixelLimit: pixelLimit)
        case nil: throw ImageError(reason: .notAnImage, message: "neither a PNG nor a JPEG file")
        }
    }

    public static func decodeJPEG(_ bytes: [UInt8], scaleDenominator: Int, pixelLimit: UInt64 = defaultPixelLimit) throws -> DecodedImage {
        var result = leakless_pixels()
        var message = [CChar](repeating: 0, count: 256)
        let status = bytes.withUnsafeBufferPointer { buffer in
            leakless_jpeg_decode(buffer.baseAddress, buffer.count, Int32(scaleDenominator), pixelLimit, &result, &message, message.count)
        }
        guard status == 0 else {
            let text = String(cString: message)
            throw ImageError(reason: text.hasPrefix("declared size") ? .tooLarge : .corrupt, message: "JPEG: \(text)")
        }
        defer { leakless_pixels_free(&result) }
        let count = Int(result.width) * Int(result.height) * Int(result.channels)
        let pixels = Array(UnsafeBufferPointer(start: result.pixels, count: count))
        return DecodedImage(width: Int(result.width), height: Int(result.height), channels: Int(result.channels), pixels: pixels)
    }

    public static func decodePNG(_ bytes: [UInt8], pixelLimit: UInt64 = defaultPixelLimit) throws -> DecodedImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        let began = bytes.withUnsafeBufferPointer { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        guard began != 0 else { throw pngError(image, reason: .corrupt) }
        guard UInt64(image.width) * UInt64(image.height) <= pixelLimit else {
            throw ImageError(reason: .tooLarge, message: "PNG: declared size \(image.width)x\(image.height) exceeds the limit of \(pixelLimit) pixels")
        }
        let grey = image.format & UInt32(PNG_FORMAT_FLAG_COLOR) == 0
        image.format = grey ? UInt32(PNG_FORMAT_GRAY) : UInt32(PNG_FORMAT_RGB)
        let channels = grey ? 1 : 3
        let width = Int(image.width), height = Int(image.height)
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        var white = png_color(red: 255, green: 255, blue: 255)
        let finished = pixels.withUnsafeMutableBytes { buffer in
            png_image_finish_read(&image, &white, buffer.baseAddress, Int32(width * channels), nil)
        }
        guard finished != 0 else { throw pngError(image, reason: .corrupt) }
        return DecodedImage(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// A PNG file of the image (8-bit grey or RGB), as libpng's simplified API writes it.
    public static func encodePNG(_ image: DecodedImage) throws -> [UInt8] {
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = image.channels == 1 ? UInt32(PNG_FORMAT_GRAY) : UInt32(PNG_FORMAT_RGB)
        defer { png_image_free(&png) }
        let stride = Int32(image.width * image.channels)
        var size = 0
        // First call measures, second writes.
        let measured = image.pixels.withUnsafeBytes {
            png_image_write_to_memory(&png, nil, &size, 0, $0.baseAddress, stride, nil)
        }
        guard measured != 0 else { throw pngError(png, reason: .corrupt) }
        var output = [UInt8](repeating: 0, count: size)
        let written = output.withUnsafeMutableBytes { target in
            image.pixels.withUnsafeBytes { source in
                png_image_write_to_memory(&png, target.baseAddress, &size, 0, source.baseAddress, stride, nil)
            }
        }
        guard written != 0 else { throw pngError(png, reason: .corrupt) }
        return Array(output.prefix(size))
    }

    private static func pngError(_ image: png_image, reason: ImageError.Reason) -> ImageError {
        let message = withUnsafeBytes(of: image.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return ImageError(reason: reason, message: "PNG: \(message.isEmpty ? "unreadable" : message)")
    }
}
