import Foundation
import LeaklessCore
import LeaklessImaging

/// An image sent to a vision model: its bytes go on the wire as a base64 data URL, its hash
/// into cache keys.
public struct ImageAttachment: Sendable {
    public let bytes: [UInt8]
    /// "image/png" or "image/jpeg".
    public let mimeType: String
    public let hash: ContentHash

    public init(bytes: [UInt8], mimeType: String) {
        self.bytes = bytes
        self.mimeType = mimeType
        self.hash = ContentHash(of: bytes)
    }

    public init(bytes: [UInt8], format: ImageFormat) {
        self.init(bytes: bytes, mimeType: format.mimeType)
    }

    public var dataURL: String { "data:\(mimeType);base64,\(Data(bytes).base64EncodedString())" }
}

/// One chat message: a role and its text, with images for vision models.
public struct ChatMessage: Sendable {
    public var role: String
    public var text: String
    public var images: [ImageAttachment]

    public init(role: String, text: String, images: [ImageAttachment] = []) {
        self.role = role
        self.text = text
        self.images = images
    }

    /// The message as the OpenAI chat wire format wants it: plain content for text alone,
    /// content parts (text, then image_url items) when images come along.
    public var wire: JSONValue {
        guard !images.isEmpty else { return .object(["role": .string(role), "content": .string(text)]) }
        var parts: [JSONValue] = [.object(["type": "text", "text": .string(text)])]
        for image in images {
            parts.append(.object(["type": "image_url", "image_url": .object(["url": .string(image.dataURL)])]))
        }
        return .object(["role": .string(role), "content": .array(parts)])
    }

    /// The message for a cache key: images by their hash, so the key stays small and exact.
    public var keyed: JSONValue {
        .object([
            "role": .string(role), "text": .string(text),
            "images": .array(images.map { .string($0.hash.hex) }),
        ])
    }
}
