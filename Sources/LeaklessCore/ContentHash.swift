import CXXHash

/// XXH3-128 of some bytes, as 32 lower-case hex digits in xxhash's canonical (big-endian) order,
/// the same string `xxhsum -H2` prints.
public struct ContentHash: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let hex: String

    public init<Bytes: Collection>(of bytes: Bytes) where Bytes.Element == UInt8 {
        let digest: XXH128_hash_t =
            bytes.withContiguousStorageIfAvailable { buffer in
                XXH3_128bits(buffer.baseAddress, buffer.count)
            } ?? Array(bytes).withUnsafeBufferPointer { XXH3_128bits($0.baseAddress, $0.count) }
        self.hex = ContentHash.hexString(high: digest.high64, low: digest.low64)
    }

    public init(ofString string: String) {
        self.init(of: Array(string.utf8))
    }

    /// The hash of a JSON value's canonical form.
    public init(ofJSON value: JSONValue) {
        self.init(of: JSONWriter.canonicalBytes(value))
    }

    /// A hash read back from its hex form; nil unless it is 32 hex digits.
    public init?(hex: String) {
        guard hex.utf8.count == 32, hex.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else { return nil }
        self.hex = hex
    }

    public var description: String { hex }

    /// XXH3-64 of a string's UTF-8 bytes, for features that need a number, not a name.
    public static func xxh64(_ string: String) -> UInt64 {
        var bytes = Array(string.utf8)
        return bytes.withUnsafeMutableBufferPointer { XXH3_64bits($0.baseAddress, $0.count) }
    }

    /// The same hash of bytes already in memory.
    public static func xxh64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        XXH3_64bits(bytes.baseAddress, bytes.count)
    }

    public static func < (lhs: ContentHash, rhs: ContentHash) -> Bool { lhs.hex < rhs.hex }

    static func hexString(high: UInt64, low: UInt64) -> String {
        high.paddedHex + low.paddedHex
    }
}

/// Incremental XXH3-128 over a stream of chunks, for files hashed without loading them whole.
public final class StreamingContentHash {
    private let state: OpaquePointer

    public init() {
        state = XXH3_createState()
        XXH3_128bits_reset(state)
    }

    deinit { XXH3_freeState(state) }

    public func update<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        if bytes.withContiguousStorageIfAvailable({ XXH3_128bits_update(state, $0.baseAddress, $0.count) }) == nil {
            Array(bytes).withUnsafeBufferPointer { _ = XXH3_128bits_update(state, $0.baseAddress, $0.count) }
        }
    }

    public func finish() -> ContentHash {
        let digest = XXH3_128bits_digest(state)
        return ContentHash(hex: ContentHash.hexString(high: digest.high64, low: digest.low64))!
    }
}
