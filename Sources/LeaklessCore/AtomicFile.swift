import Foundation
import Synchronization
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
        temporaryPath = TemporaryName.beside(path)
        guard let file = fopen(temporaryPath, "wb") else {
            throw LocatedError(path: path, line: nil, message: "cannot write: \(String(cString: strerror(errno)))")
        }
        self.file = file
        pending.reserveCapacity(1 << 16)
    }

    deinit { discard() }

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

    /// A line already serialised (one JSON value, no newline in it).
    public func write(line: String) throws {
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        try file.write(bytes)
        count += 1
    }

    /// A line already serialised, as bytes (one JSON value, no newline in it).
    public func write<Bytes: Collection>(lineBytes: Bytes) throws where Bytes.Element == UInt8 {
        var bytes = [UInt8]()
        bytes.reserveCapacity(lineBytes.count + 1)
        bytes.append(contentsOf: lineBytes)
        bytes.append(0x0A)
        try file.write(bytes)
        count += 1
    }

    public func commit() throws { try file.commit() }
    public func discard() { file.discard() }
}


/// The names of files and folders being written (`.<name>.tmp-<pid>-<serial>` beside the final
/// path), and the clean-up of those a killed process left behind.
public enum TemporaryName {
    private static let serial = Mutex(0)

    /// A fresh temporary path beside `path`: unique per process and per writer, so threads
    /// writing the same file do not collide.
    public static func beside(_ path: String) -> String {
        let number = serial.withLock { value -> Int in
            value += 1
            return value
        }
        return FileSystem.join(FileSystem.parent(of: path), ".\(FileSystem.lastComponent(of: path)).tmp-\(getpid())-\(number)")
    }

    /// Removes, anywhere under `folder`, the temporary files and folders of processes that are
    /// no longer running (a kill -9 leaves them); returns how many. Only names are read (no
    /// status of each file), so a workdir of many thousand files is walked quickly.
    @discardableResult
    public static func removeStale(under folder: String) throws -> Int {
        var stale: [String] = []
        func walk(_ path: String) {
            guard let directory = opendir(path) else { return }
            defer { closedir(directory) }
            while let entry = readdir(directory) {
                let name = FileSystem.entryName(entry)
                if name == "." || name == ".." { continue }
                let child = FileSystem.join(path, name)
                if name.hasPrefix("."), let marker = name.range(of: ".tmp-", options: .backwards),
                    let pid = Int32(name[marker.upperBound...].prefix(while: { $0 != "-" })), pid > 0 {
                    // kill(pid, 0) fails with ESRCH only when no such process exists.
                    if kill(pid, 0) != 0 && errno == ESRCH { stale.append(child) }
                    continue
                }
                // A request claim (`<hash>.inflight`) of a process of this machine that is gone.
                if name.hasSuffix(".inflight") {
                    if ProcessClaim.isStale(child, staleSeconds: .infinity) { stale.append(child) }
                    continue
                }
                var isFolder = entry.pointee.d_type == UInt8(DT_DIR)
                if entry.pointee.d_type == UInt8(DT_UNKNOWN) {
                    var info = stat()
                    isFolder = lstat(child, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
                }
                if isFolder { walk(child) }
            }
        }
        guard FileSystem.isDirectory(folder) else { return 0 }
        walk(folder)
        for path in stale { try FileSystem.remove(path) }
        return stale.count
    }
}
