import Foundation
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A file written under a temporary name in the same folder and renamed into place by `commit()`,
/// so that a reader never sees it half-written. Without a commit (an error, a crash) the final
/// path is untouched; `discard()` removes the temporary file.
public final class AtomicFile {
    public let path: String
    public let temporaryPath: String
    private var file: UnsafeMutablePointer<FILE>?
    private var pending: [UInt8] = []

    public init(path: String) throws {
        self.path = path
        let folder = FileSystem.parent(of: path)
        try FileSystem.createDirectory(folder)
        let name = FileSystem.lastComponent(of: path)
        // Unique per process and per writer, so threads writing the same file do not collide.
        temporaryPath = FileSystem.join(folder, ".\(name).tmp-\(getpid())-\(AtomicFile.nextSerial())")
        guard let file = fopen(temporaryPath, "wb") else {
            throw LocatedError(path: path, line: nil, message: "cannot write: \(String(cString: strerror(errno)))")
        }
        self.file = file
        pending.reserveCapacity(1 << 16)
    }

    deinit { discard() }

    private static let serialLock = NSLock()
    nonisolated(unsafe) private static var serial = 0

    static func nextSerial() -> Int {
        serialLock.lock()
        defer { serialLock.unlock() }
        serial += 1
        return serial
    }

    public func write(_ bytes: [UInt8]) throws {
        pending.append(contentsOf: bytes)
        if pending.count >= 1 << 16 { try flush() }
    }

    public func write(_ string: String) throws {
        pending.append(contentsOf: string.utf8)
        if pending.count >= 1 << 16 { try flush() }
    }

    private func flush() throws {
        guard let file else { throw LocatedError(path: path, line: nil, message: "file already closed") }
        let written = pending.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        if written != pending.count {
            throw LocatedError(path: path, line: nil, message: "write failed: \(String(cString: strerror(errno)))")
        }
        pending.removeAll(keepingCapacity: true)
    }

    /// Flushes, syncs and renames the file into place.
    public func commit() throws {
        try flush()
        guard let file else { return }
        let synced = fflush(file) == 0 && fsync(fileno(file)) == 0
        fclose(file)
        self.file = nil
        guard synced else {
            unlink(temporaryPath)
            throw LocatedError(path: path, line: nil, message: "write failed: \(String(cString: strerror(errno)))")
        }
        guard rename(temporaryPath, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw LocatedError(path: path, line: nil, message: "cannot move into place: \(reason)")
        }
    }

    /// Abandons the file: the temporary is removed and the final path left as it was.
    public func discard() {
        if let file {
            fclose(file)
            self.file = nil
            unlink(temporaryPath)
        }
    }

    /// Writes `bytes` to `path` atomically in one call.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let file = try AtomicFile(path: path)
        try file.write(bytes)
        try file.commit()
    }

    public static func write(_ string: String, to path: String) throws {
        try write(Array(string.utf8), to: path)
    }
}

/// Writes records as canonical JSONL lines through an `AtomicFile`.
public final class JSONLWriter {
    private let file: AtomicFile
    public private(set) var count = 0

    public init(path: String) throws {
        file = try AtomicFile(path: path)
    }

    public var path: String { file.path }

    public func write(_ record: Record) throws {
        try write(json: record.json)
    }

    public func write(json: JSONValue) throws {
        var bytes = JSONWriter.canonicalBytes(json)
        bytes.append(0x0A)
        try file.write(bytes)
        count += 1
    }

    public func commit() throws { try file.commit() }
    public func discard() { file.discard() }
}

