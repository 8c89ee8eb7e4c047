import LeaklessCore
import LeaklessImaging

/// Image bytes stored once, under their own hash.
public struct BlobStore: Sendable {
    public let folder: String

    public init(folder: String) { self.folder = folder }

    public func path(for hash: ContentHash, format: ImageFormat) -> String {
        FileSystem.join(folder, String(hash.hex.prefix(2)), "\(hash.hex).\(format.fileExtension)")
    }

    @discardableResult
    public func store(_ bytes: [UInt8], format: ImageFormat) throws -> ContentHash {
        let hash = ContentHash(of: bytes)
        let target = path(for: hash, format: format)
        if !FileSystem.exists(target) { try AtomicFile.write(bytes, to: target) }
        return hash
    }
}
