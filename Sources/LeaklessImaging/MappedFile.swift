#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// A file's bytes mapped read-only into memory: the decoders read straight from the page cache,
/// with no copy into a buffer of our own.
public final class MappedFile {
    public let bytes: UnsafeRawBufferPointer
    private let mapping: UnsafeMutableRawPointer?

    /// An empty file maps to an empty buffer (mmap refuses a zero length).
    public init(path: String) throws {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw ImageError(reason: .unreadable, message: "\(path): cannot open: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw ImageError(reason: .unreadable, message: "\(path): cannot stat: \(String(cString: strerror(errno)))") }
        let size = Int(status.st_size)
        guard size > 0 else {
            mapping = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0)
        guard let address, address != MAP_FAILED else {
            throw ImageError(reason: .unreadable, message: "\(path): cannot map: \(String(cString: strerror(errno)))")
        }
        mapping = address
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        if let mapping { munmap(mapping, bytes.count) }
    }
}
