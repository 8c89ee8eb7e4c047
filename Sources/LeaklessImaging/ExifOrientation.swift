/// The EXIF orientation tag (0x0112): how the stored pixels must be turned to be seen upright.
/// Read from a JPEG's APP1 "Exif" segment or a PNG's eXIf chunk; anything missing, unreadable or
/// out of range is `.up`, since a damaged tag must not make a readable image unreadable.
public enum ExifOrientation: Int, Sendable {
    case up = 1, mirrored = 2, down = 3, downMirrored = 4
    case leftMirrored = 5, right = 6, rightMirrored = 7, left = 8

    /// Rotations by a quarter turn exchange width and height.
    public var swapsAxes: Bool { rawValue >= 5 }

    public static func read(_ bytes: UnsafeRawBufferPointer, format: ImageFormat) -> ExifOrientation {
        let tiff: Range<Int>?
        switch format {
        case .jpeg: tiff = jpegExif(bytes)
        case .png: tiff = pngExif(bytes)
        }
        guard let tiff, let value = orientationTag(bytes, tiff: tiff) else { return .up }
        return ExifOrientation(rawValue: value) ?? .up
    }

    /// The TIFF block of the first APP1 segment that starts with "Exif\0\0", before the scan.
    private static func jpegExif(_ b: UnsafeRawBufferPointer) -> Range<Int>? {
        var offset = 2
        while offset + 4 <= b.count {
            guard b[offset] == 0xFF else { return nil }
            let marker = b[offset + 1]
            if marker == 0xFF { offset += 1; continue }
            if marker == 0xDA || marker == 0xD9 { return nil }
            if marker == 0x01 || (0xD0...0xD7).contains(marker) { offset += 2; continue }
            let length = Int(b[offset + 2]) << 8 | Int(b[offset + 3])
            let start = offset + 4, end = offset + 2 + length
            guard length >= 2, end <= b.count else { return nil }
            if marker == 0xE1, end - start >= 6, Array(b[start..<start + 6]) == [0x45, 0x78, 0x69, 0x66, 0, 0] {
                return start + 6..<end
            }
            offset = end
        }
        return nil
    }

    /// The data of an eXIf chunk before the image data.
    private static func pngExif(_ b: UnsafeRawBufferPointer) -> Range<Int>? {
        var offset = 8
        while offset + 8 <= b.count {
            let length = Int(b[offset]) << 24 | Int(b[offset + 1]) << 16 | Int(b[offset + 2]) << 8 | Int(b[offset + 3])
            let type = Array(b[offset + 4..<offset + 8])
            let start = offset + 8, end = start + length
            guard end <= b.count else { return nil }
            if type == Array("eXIf".utf8) { return start..<end }
            if type == Array("IDAT".utf8) { return nil }
            offset = end + 4
        }
        return nil
    }

    private static func orientationTag(_ b: UnsafeRawBufferPointer, tiff: Range<Int>) -> Int? {
        guard tiff.count >= 8 else { return nil }
        let little: Bool
        switch (b[tiff.lowerBound], b[tiff.lowerBound + 1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return nil
        }
        func u16(_ at: Int) -> Int? {
            let p = tiff.lowerBound + at
            guard at >= 0, p + 2 <= tiff.upperBound else { return nil }
            return little ? Int(b[p]) | Int(b[p + 1]) << 8 : Int(b[p]) << 8 | Int(b[p + 1])
        }
        func u32(_ at: Int) -> Int? {
            guard let first = u16(at), let second = u16(at + 2) else { return nil }
            return little ? first | second << 16 : first << 16 | second
        }
        guard u16(2) == 42, let ifd = u32(4), let count = u16(ifd) else { return nil }
        for index in 0..<count {
            let entry = ifd + 2 + 12 * index
            guard let tag = u16(entry) else { return nil }
            if tag == 0x0112 {
                guard u16(entry + 2) == 3 else { return nil }  // SHORT
                return u16(entry + 8)
            }
        }
        return nil
    }

    /// The upright image.
    public func apply(to image: DecodedImage) -> DecodedImage {
        guard self != .up else { return image }
        let (width, height, pixels) = transform(width: image.width, height: image.height, channels: image.channels, pixels: image.pixels)
        return DecodedImage(width: width, height: height, channels: image.channels, pixels: pixels)
    }

    public func apply(to plane: LumaPlane) -> LumaPlane {
        guard self != .up else { return plane }
        let (width, height, pixels) = transform(width: plane.width, height: plane.height, channels: 1, pixels: plane.pixels)
        return LumaPlane(width: width, height: height, pixels: pixels)
    }

    /// Each output pixel (x, y) is read from the stored pixel this orientation puts there
    /// (the transposes of Pillow's ImageOps.exif_transpose).
    private func transform(width: Int, height: Int, channels: Int, pixels: [UInt8]) -> (Int, Int, [UInt8]) {
        let outWidth = swapsAxes ? height : width, outHeight = swapsAxes ? width : height
        var output = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<outHeight {
            for x in 0..<outWidth {
                let source: (Int, Int)
                switch self {
                case .up: source = (x, y)
                case .mirrored: source = (width - 1 - x, y)
                case .down: source = (width - 1 - x, height - 1 - y)
                case .downMirrored: source = (x, height - 1 - y)
                case .leftMirrored: source = (y, x)
                case .right: source = (y, height - 1 - x)
                case .rightMirrored: source = (width - 1 - y, height - 1 - x)
                case .left: source = (width - 1 - y, x)
                }
                let from = (source.1 * width + source.0) * channels, to = (y * outWidth + x) * channels
                for c in 0..<channels { output[to + c] = pixels[from + c] }
            }
        }
        return (outWidth, outHeight, output)
    }
}
