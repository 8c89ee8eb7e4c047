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
    /// How far past `start` the buffer is known to hold no newline.
    private var scanned = 0
    public private(set) var lineNumber = 0
    /// The longest line read; a longer one is an error, not gigabytes of memory.
    public let maximumLineBytes: Int

    public static let defaultMaximumLineBytes = 16 << 20

    public init(path: String, maximumLineBytes: Int = LineReader.defaultMaximumLineBytes) throws {
        self.maximumLineBytes = maximumLineBytes
        guard let file = fopen(path, "rb") else {
            throw LocatedError(path: path, line: nil, message: "cannot open: \(String(cString: strerror(errno)))")
        }
        self.path = path
        self.file = file
    }

    deinit { fclose(file) }

    /// Whether a line holds nothing but spaces, tabs and carriage returns: what every reader of
    /// JSONL skips.
    public static func isBlank<Line: Collection>(_ line: Line) -> Bool where Line.Element == UInt8 {
        line.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
    }

    /// The next line that is not blank (see `isBlank`), or nil at the end of the file;
    /// `lineNumber` is its number.
    public func nextContentLine() throws -> ArraySlice<UInt8>? {
        while let line = try nextLine() {
            if !Self.isBlank(line) { return line }
        }
        return nil
    }

    /// The next line without its terminator (`\n` or `\r\n`), or nil at the end of the file.
    public func nextLine() throws -> ArraySlice<UInt8>? {
        while true {
            if let newline = buffer[(start + scanned)...].firstIndex(of: 0x0A) {
                var end = newline
                if end > start, buffer[end - 1] == 0x0D { end -= 1 }
                let line = buffer[start..<end]
                start = newline + 1
                scanned = 0
                lineNumber += 1
                return line
            }
            scanned = buffer.count - start
            if scanned > maximumLineBytes {
                throw LocatedError(path: path, line: lineNumber + 1, message: "the line is longer than \(maximumLineBytes >> 20) MiB: not a record")
            }
            if atEnd {
                guard start < buffer.count else { return nil }
                var end = buffer.count
                if buffer[end - 1] == 0x0D { end -= 1 }
                let line = buffer[start..<end]
                start = buffer.count
                scanned = 0
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
