#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads a file line by line in fixed-size chunks, so memory does not grow with the file.
public final class LineReader {
    public let path: String
    private let file: UnsafeMutablePointer<FILE>
    private var buffer: [UInt8] = []
    private var start = 0
    private var chunk = [UInt8](repeating: 0, count: 1 << 16)
    private var atEnd = false
    public private(set) var lineNumber = 0

    public init(path: String) throws {
        guard let file = fopen(path, "rb") else {
            throw LocatedError(path: path, line: nil, message: "cannot open: \(String(cString: strerror(errno)))")
        }
        self.path = path
        self.file = file
    }

    deinit { fclose(file) }

    /// The next line without its terminator (`\n` or `\r\n`), or nil at the end of the file.
    public func nextLine() throws -> ArraySlice<UInt8>? {
        while true {
            if let newline = buffer[start...].firstIndex(of: 0x0A) {
                var end = newline
                if end > start, buffer[end - 1] == 0x0D { end -= 1 }
                let line = buffer[start..<end]
                start = newline + 1
                lineNumber += 1
                return line
            }
            if atEnd {
                guard start < buffer.count else { return nil }
                var end = buffer.count
                if buffer[end - 1] == 0x0D { end -= 1 }
                let line = buffer[start..<end]
                start = buffer.count
                lineNumber += 1
                return line
            }
            if start > 0 {
                buffer.removeSubrange(0..<start)
                start = 0
            }
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count < chunk.count {
                if ferror(file) != 0 {
                    throw LocatedError(path: path, line: lineNumber + 1, message: "read failed: \(String(cString: strerror(errno)))")
                }
                atEnd = true
            }
            buffer.append(contentsOf: chunk[0..<count])
        }
    }
}
