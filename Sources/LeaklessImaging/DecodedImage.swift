/// Pixels decoded from a file: 8-bit samples, `channels` per pixel (1 grey or 3 RGB), rows packed.
public struct DecodedImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public let pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels, "pixel buffer does not match the image size")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }
}

/// One 8-bit plane: the luma that perceptual hashes are computed from.
public struct LumaPlane: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height, "pixel buffer does not match the plane size")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

public enum ImageFormat: String, Sendable {
    /// The media type of the format ("image/png", "image/jpeg").
    public var mimeType: String { "image/\(rawValue)" }
    case png
    case jpeg

    public var fileExtension: String { self == .png ? "png" : "jpg" }

    /// The format the bytes say they are, whatever the file is called.
    public static func sniff<Bytes: Collection>(_ bytes: Bytes) -> ImageFormat? where Bytes.Element == UInt8 {
        let head = Array(bytes.prefix(8))
        if head == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
        if head.count >= 3, head[0] == 0xFF, head[1] == 0xD8, head[2] == 0xFF { return .jpeg }
        return nil
    }
}

/// Why an image could not be read; `reason` is a short code for rejects.
public struct ImageError: Error, CustomStringConvertible, Equatable {
    public enum Reason: String, Sendable {
        case empty = "empty-file"
        case notAnImage = "not-an-image"
        case corrupt = "corrupt-image"
        case tooLarge = "image-too-large"
        case unreadable = "unreadable-file"
    }

    public let reason: Reason
    public let message: String

    public var description: String { message }
}
