import Foundation
import LeaklessCore

#if canImport(Glibc)
    import Glibc
#endif

/// A `.safetensors` file, memory-mapped: an 8-byte little-endian header length, a JSON header
/// naming each tensor's dtype, shape and byte range, then the bytes. Tensors are read in place.
public final class SafeTensors: @unchecked Sendable {
    // `@unchecked Sendable`: the mapping is read-only and lives as long as this object.
    public struct Tensor {
        public let dtype: String
        public let shape: [Int]
        let start: Int
        let end: Int
    }

    public let path: String
    public let tensors: [String: Tensor]
    /// The header's `__metadata__`: free-form string pairs.
    public let metadata: [String: String]
    private let base: UnsafeMutableRawPointer
    private let size: Int
    private let dataStart: Int

    public init(path: String) throws {
        self.path = path
        func fail(_ message: String) -> LocatedError { LocatedError(path: path, line: nil, message: message) }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw fail("cannot open: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw fail("cannot stat") }
        size = Int(info.st_size)
        guard size >= 8 else { throw fail("too short to be a safetensors file") }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), mapped != MAP_FAILED else {
            throw fail("cannot map: \(String(cString: strerror(errno)))")
        }
        base = mapped
        let headerLength = Int(mapped.loadUnaligned(as: UInt64.self).littleEndian)
        guard headerLength > 0, headerLength <= size - 8 else {
            munmap(mapped, size)
            throw fail("the header length \(headerLength) does not fit in the file")
        }
        dataStart = 8 + headerLength
        let header: JSONValue
        do {
            header = try JSONParser.parse(bytes: Array(UnsafeRawBufferPointer(start: mapped + 8, count: headerLength)))
        } catch {
            munmap(mapped, size)
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
                munmap(mapped, size)
                throw fail("tensor '\(name)' has a malformed header entry")
            }
            tensors[name] = Tensor(dtype: dtype, shape: shape, start: offsets[0], end: offsets[1])
        }
        self.tensors = tensors
    }

    deinit { munmap(base, size) }

    /// A float32 tensor's values, in place; its shape must be `shape`.
    public func floats(_ name: String, shape: [Int]) throws -> UnsafeBufferPointer<Float> {
        guard let tensor = tensors[name] else { throw LocatedError(path: path, line: nil, message: "no tensor '\(name)'") }
        guard tensor.dtype == "F32" else {
            throw LocatedError(path: path, line: nil, message: "tensor '\(name)' is \(tensor.dtype), expected F32")
        }
        guard tensor.shape == shape, tensor.end - tensor.start == shape.reduce(1, *) * 4 else {
            throw LocatedError(path: path, line: nil, message: "tensor '\(name)' has shape \(tensor.shape), expected \(shape)")
        }
        let pointer = (base + dataStart + tensor.start)
        // The format aligns tensors to their element size when the header length keeps them so.
        guard Int(bitPattern: pointer) % MemoryLayout<Float>.alignment == 0 else {
            throw LocatedError(path: path, line: nil, message: "tensor '\(name)' is not 4-byte aligned")
        }
        return UnsafeBufferPointer(start: pointer.assumingMemoryBound(to: Float.self), count: shape.reduce(1, *))
    }
}
