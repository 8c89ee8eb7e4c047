import CImageShims
import CPNG
import LeaklessCore

/// What a decode should produce beyond the file's declared size.
public struct DecodeOptions: Sendable {
    /// 8-bit grey or RGB pixels.
    public var pixels = false
    /// The luma plane (Pillow's "L" weights), what the perceptual hashes read.
    public var luma = false
    /// XXH3-128 of the decoded size and RGB rows: equal for pixel-identical images in any encoding.
    public var digest = false
    /// JPEG: decode at 1/2, 1/4 or 1/8 scale in the DCT domain.
    public var scaleDenominator = 1
    /// JPEG: instead of a fixed scale, the smallest DCT scale whose sides stay at least this long.
    public var minimumSide = 0
    /// PNG: the luma plane averaged over 8x8, 4x4 or 2x2 blocks, chosen by `minimumSide` as the
    /// JPEG scale is (the JPEG DCT scale is such an average too).
    public var boxLuma = false
    /// JPEG: decode libjpeg's Y channel only (luma and digest; no pixels).
    public var jpegGreyOnly = false
    /// PNG: skip zlib's Adler-32 of the inflated rows; the chunk CRCs still cover every
    /// compressed byte, so damage is still refused.
    public var skipAdler32 = false
    /// PNG: skip the chunk CRCs too (for measurement only: damage may then go unseen).
    public var skipCRC = false
    /// Apply the EXIF orientation (JPEG APP1, PNG eXIf) to what is returned.
    public var orient = true
    /// Images declaring more pixels than this are refused before any pixel buffer is allocated.
    public var pixelLimit = ImageCodec.defaultPixelLimit

    public init(pixels: Bool = false, luma: Bool = false, digest: Bool = false) {
        self.pixels = pixels
        self.luma = luma
        self.digest = digest
    }
}

/// One decoded file. Sizes are after DCT scaling and orientation; `sourceWidth`/`sourceHeight`
/// are what the file declares, oriented the same way.
public struct DecodedFrame: Sendable {
    public let format: ImageFormat
    public let sourceWidth: Int
    public let sourceHeight: Int
    public let image: DecodedImage?
    public let luma: LumaPlane?
    /// 32 hex digits, or nil when not asked for.
    public let digest: String?
    public let hadAlpha: Bool
    public let orientation: ExifOrientation
}

/// Decoding (libpng, libjpeg-turbo) and PNG encoding. Alpha is composited onto white, the same
/// background for every image, so a transparent PNG decodes the same wherever it is used.
public enum ImageCodec {
    public static let defaultPixelLimit: UInt64 = 100_000_000

    /// Full-size pixels, oriented.
    public static func decode(_ bytes: [UInt8], pixelLimit: UInt64 = defaultPixelLimit) throws -> DecodedImage {
        var options = DecodeOptions(pixels: true)
        options.pixelLimit = pixelLimit
        return try decode(bytes, options: options).image!
    }

    public static func decodeJPEG(_ bytes: [UInt8], scaleDenominator: Int, pixelLimit: UInt64 = defaultPixelLimit) throws -> DecodedImage {
        guard ImageFormat.sniff(bytes) == .jpeg else { throw ImageError(reason: .notAnImage, message: "not a JPEG file") }
        var options = DecodeOptions(pixels: true)
        options.scaleDenominator = scaleDenominator
        options.pixelLimit = pixelLimit
        return try decode(bytes, options: options).image!
    }

    public static func decode(_ bytes: [UInt8], options: DecodeOptions) throws -> DecodedFrame {
        try bytes.withUnsafeBufferPointer { try decode(UnsafeRawBufferPointer($0), options: options) }
    }

    /// Decodes from memory the caller owns (a memory-mapped file, for instance).
    public static func decode(_ bytes: UnsafeRawBufferPointer, options: DecodeOptions) throws -> DecodedFrame {
        guard !bytes.isEmpty, let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            throw ImageError(reason: .empty, message: "the file is empty")
        }
        var flags: UInt32 = 0
        if options.pixels { flags |= UInt32(LEAKLESS_DECODE_PIXELS) }
        if options.luma { flags |= UInt32(LEAKLESS_DECODE_LUMA) }
        if options.digest { flags |= UInt32(LEAKLESS_DECODE_DIGEST) }
        if options.jpegGreyOnly { flags |= UInt32(LEAKLESS_DECODE_JPEG_GREY) }
        if options.skipAdler32 { flags |= UInt32(LEAKLESS_DECODE_SKIP_ADLER32) }
        if options.skipCRC { flags |= UInt32(LEAKLESS_DECODE_SKIP_CRC) }
        if options.boxLuma { flags |= UInt32(LEAKLESS_DECODE_LUMA_BOX) }
        var result = leakless_image()
        var message = [CChar](repeating: 0, count: 256)
        let status = leakless_image_decode(
            base, bytes.count, Int32(options.scaleDenominator), UInt32(options.minimumSide), flags, options.pixelLimit, &result, &message, message.count)
        defer { leakless_image_free(&result) }
        guard status == 0 else {
            let text = String(messageBuffer: message)
            let format = ImageFormat.sniff(UnsafeRawBufferPointer(rebasing: bytes.prefix(8)))
            let prefix = format.map { $0 == .png ? "PNG: " : "JPEG: " } ?? ""
            switch status {
            case Int32(LEAKLESS_DECODE_TOO_LARGE): throw ImageError(reason: .tooLarge, message: prefix + text)
            case Int32(LEAKLESS_DECODE_NOT_AN_IMAGE): throw ImageError(reason: .notAnImage, message: text)
            default: throw ImageError(reason: .corrupt, message: prefix + (text.isEmpty ? "unreadable" : text))
            }
        }
        let format: ImageFormat = result.format == UInt32(LEAKLESS_FORMAT_PNG) ? .png : .jpeg
        let orientation = options.orient ? ExifOrientation.read(bytes, format: format) : .up
        let width = Int(result.width), height = Int(result.height), channels = Int(result.channels)
        var image: DecodedImage?
        if let pixels = result.pixels {
            let plain = DecodedImage(
                width: width, height: height, channels: channels,
                pixels: Array(UnsafeBufferPointer(start: pixels, count: width * height * channels)))
            image = orientation.apply(to: plain)
        }
        var luma: LumaPlane?
        if let plane = result.luma {
            let lumaWidth = Int(result.luma_width), lumaHeight = Int(result.luma_height)
            let plain = LumaPlane(
                width: lumaWidth, height: lumaHeight, pixels: Array(UnsafeBufferPointer(start: plane, count: lumaWidth * lumaHeight)))
            luma = orientation.apply(to: plain)
        }
        let digest = options.digest ? result.digest_high.paddedHex + result.digest_low.paddedHex : nil
        let swaps = orientation.swapsAxes
        return DecodedFrame(
            format: format,
            sourceWidth: Int(swaps ? result.source_height : result.source_width),
            sourceHeight: Int(swaps ? result.source_width : result.source_height),
            image: image, luma: luma, digest: digest, hadAlpha: result.had_alpha != 0, orientation: orientation)
    }

    /// A baseline JPEG of the image (8-bit grey or RGB), as libjpeg-turbo writes it.
    public static func encodeJPEG(_ image: DecodedImage, quality: Int = 80) throws -> [UInt8] {
        var buffer: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = image.pixels.withUnsafeBufferPointer { pixels in
            leakless_jpeg_encode(
                pixels.baseAddress, UInt32(image.width), UInt32(image.height), UInt32(image.channels), Int32(quality), &buffer, &size,
                &message, message.count)
        }
        defer { leakless_buffer_free(buffer) }
        guard status == 0, let buffer else { throw ImageError(reason: .corrupt, message: "JPEG: \(String(messageBuffer: message))") }
        return Array(UnsafeBufferPointer(start: buffer, count: size))
    }

    /// The image scaled down (Lanczos, each channel) so that its longer side is at most `side`.
    public static func thumbnail(_ image: DecodedImage, side: Int) -> DecodedImage {
        let longer = max(image.width, image.height)
        guard longer > side else { return image }
        return resize(image, width: max(1, image.width * side / longer), height: max(1, image.height * side / longer))
    }

    /// The image resampled (Lanczos, each channel) to `width` x `height`.
    public static func resize(_ image: DecodedImage, width: Int, height: Int) -> DecodedImage {
        let resampler = LanczosResampler()
        let planes = (0..<image.channels).map { channel in
            resampler.resize(
                LumaPlane(width: image.width, height: image.height, pixels: stride(from: channel, to: image.pixels.count, by: image.channels).map { image.pixels[$0] }),
                width: width, height: height)
        }
        var pixels = [UInt8](repeating: 0, count: width * height * image.channels)
        for (channel, plane) in planes.enumerated() {
            for index in 0..<(width * height) { pixels[index * image.channels + channel] = plane.pixels[index] }
        }
        return DecodedImage(width: width, height: height, channels: image.channels, pixels: pixels)
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
        // Compressed once, into a buffer no PNG of these pixels can outgrow: the raw rows with
        // their filter bytes, deflate's 5 bytes per stored block of 16 KiB, and the chunks around
        // them. (Asking libpng for the size first would compress everything twice.)
        let raw = (image.width * image.channels + 1) * image.height
        var size = raw + raw / 16_384 * 5 + 4_096
        var output = [UInt8](repeating: 0, count: size)
        let written = output.withUnsafeMutableBytes { target in
            image.pixels.withUnsafeBytes { source in
                png_image_write_to_memory(&png, target.baseAddress, &size, 0, source.baseAddress, stride, nil)
            }
        }
        if written == 0 && size > output.count {
            // Larger than the bound after all: libpng said how large; write again into that.
            output = [UInt8](repeating: 0, count: size)
            let again = output.withUnsafeMutableBytes { target in
                image.pixels.withUnsafeBytes { source in
                    png_image_write_to_memory(&png, target.baseAddress, &size, 0, source.baseAddress, stride, nil)
                }
            }
            guard again != 0 else { throw pngError(png) }
        } else if written == 0 {
            throw pngError(png)
        }
        return Array(output.prefix(size))
    }

    private static func pngError(_ image: png_image) -> ImageError {
        let message = withUnsafeBytes(of: image.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return ImageError(reason: .corrupt, message: "PNG: \(message.isEmpty ? "cannot encode" : message)")
    }
}
