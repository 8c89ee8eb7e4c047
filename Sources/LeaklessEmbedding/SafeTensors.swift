import Foundation
import LeaklessCore

/// A `.safetensors` file: an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, then the bytes. The file is read mapped (only the
/// pages a caller touches are read); tensors are read in place through `TensorView`s, which
/// keep the mapping alive.
public final class SafeTensors: Sendable {
    public struct Tensor: Sendable {
        public let dtype: String
        public let shape: [Int]
        let start: Int
        let end: Int
    }

    public let path: String
    public let tensors: [String: Tensor]
    /// The header's `__metadata__`: free-form string pairs.
    public let metadata: [String: String]
    private let bytes: Data
    private let dataStart: Int

    public init(path: String) throws {
        self.path = path
        func fail(_ message: String) -> LocatedError { LocatedError(path: path, line: nil, message: message) }
        let bytes: Data
        do {
            bytes = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw fail("cannot read: \((error as NSError).localizedDescription)")
        }
        self.bytes = bytes
        let size = bytes.count
        guard size >= 8 else { throw fail("too short to be a safetensors file") }
        let headerLength = bytes.withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self).littleEndian) }
        guard headerLength > 0, headerLength <= size - 8 else {
            throw fail("the header length \(headerLength) does not fit in the file")
        }
        dataStart = 8 + headerLength
        let header: JSONValue
        do {
            header = try bytes.withUnsafeBytes { try JSONParser.parse(bytes: Array($0[8..<8 + headerLength])) }
        } catch {
            throw fail("the header is not JSON: \(error)")
        }
        var metadata: [String: String] = [:]
        for (key, value) in header["__metadata__"]?.objectValue ?? [:] { metadata[key] = value.stringValue }
        self.metadata = metadata
        var tensors: [String: Tensor] = [:]
        for (name, entry) in header.objectValue ?? [:] where name != "__metadata__" {
            guard let dtype = entry["dtype"]?.stringValue, let shape = entry["shape"]?.arrayValue?.compactMap({ $0.intValue.map(Int.init) }),
                let offsets = entry["data_offsets"]?.arrayValue?.compactMap({ $0.intValue.map(Int.init) }), offsets.count == 2,
                offsets[0] >= 0, offsets[0] <= offsets[1], dataStart + offsets[1] <= size
            else {
                throw fail("tensor '\(name)' has a malformed header entry")
            }
            tensors[name] = Tensor(dtype: dtype, shape: shape, start: offsets[0], end: offsets[1])
        }
        self.tensors = tensors
    }

    /// A float32 tensor, read in place; its shape must be `shape`.
    public func view(_ name: String, shape: [Int]) throws -> TensorView {
        guard let tensor = tensors[name] else { throw LocatedError(path: path, line: nil, message: "no tensor '\(name)'") }
        guard tensor.dtype == "F32" else {
            throw LocatedError(path: path, line: nil, message: "tensor '\(name)' is \(tensor.dtype), expected F32")
        }
        let count = shape.reduce(1, *)
        guard tensor.shape == shape, tensor.end - tensor.start == count * 4 else {
            throw LocatedError(path: path, line: nil, message: "tensor '\(name)' has shape \(tensor.shape), expected \(shape)")
        }
        // The format aligns tensors to their element size when the header length keeps them so.
        let aligned = bytes.withUnsafeBytes { Int(bitPattern: $0.baseAddress! + dataStart + tensor.start) % MemoryLayout<Float>.alignment == 0 }
        guard aligned else { throw LocatedError(path: path, line: nil, message: "tensor '\(name)' is not 4-byte aligned") }
        return TensorView(bytes: bytes, offset: dataStart + tensor.start, count: count)
    }

    /// A float32 tensor's values, copied; its shape must be `shape`.
    public func floats(_ name: String, shape: [Int]) throws -> [Float] {
        try view(name, shape: shape).withFloats { Array($0) }
    }
}

/// float32 values in place in a mapped file: a value any thread may read, which keeps the
/// mapping alive as long as it lives.
public struct TensorView: Sendable {
    let bytes: Data
    let offset: Int
    public let count: Int

    /// Calls `body` with the values (valid only inside it).
    @inline(__always)
    public func withFloats<Result>(_ body: (UnsafeBufferPointer<Float>) throws -> Result) rethrows -> Result {
        try bytes.withUnsafeBytes { raw in
            try body(UnsafeBufferPointer(start: (raw.baseAddress! + offset).assumingMemoryBound(to: Float.self), count: count))
        }
    }
}
