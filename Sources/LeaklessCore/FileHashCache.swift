import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The content hashes of files, remembered by path, size, inode and the modification and
/// status-change times in nanoseconds, as DVC's state database does: a file whose status is
/// unchanged is not read again (the status-change time moves on any write, even one that keeps
/// the modification time). Each process has one; the driver keeps it between runs in the
/// workdir's cache, so planning a run does not read a 90 MB model every time.
public final class FileHashCache: Sendable {
    public static let shared = FileHashCache()

    struct Entry: Sendable, Equatable {
        let size: Int64
        let inode: UInt64
        let modified: Int64
        let changed: Int64
        let hash: String

        var json: JSONValue {
            .array([.int(size), .int(Int64(bitPattern: inode)), .int(modified), .int(changed), .string(hash)])
        }

        init(size: Int64, inode: UInt64, modified: Int64, changed: Int64, hash: String) {
            self.size = size
            self.inode = inode
            self.modified = modified
            self.changed = changed
            self.hash = hash
        }

        init?(_ value: JSONValue) {
            guard let fields = value.arrayValue, fields.count == 5, let size = fields[0].intValue, let inode = fields[1].intValue,
                let modified = fields[2].intValue, let changed = fields[3].intValue, let hash = fields[4].stringValue
            else { return nil }
            self.init(size: size, inode: UInt64(bitPattern: inode), modified: modified, changed: changed, hash: hash)
        }
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// Per collection folder: the hash of its folders' status, and its listing's hash then.
        var listings: [String: (folders: String, listing: String)] = [:]
        var loaded: Set<String> = []
        var dirty = false
    }

    private let state = Mutex(State())

    public init() {}

    /// Adds the hashes kept at `path` (once per path; a missing or unreadable file is no error:
    /// the hashes are computed again).
    public func load(from path: String) {
        let fresh = state.withLock { !$0.loaded.contains(path) }
        guard fresh else { return }
        var read: [String: Entry] = [:]
        var listings: [String: (folders: String, listing: String)] = [:]
        if let bytes = try? FileSystem.read(path), case .object(let object)? = try? JSONParser.parse(bytes: bytes) {
            for (file, value) in object["files"]?.objectValue ?? [:] { if let entry = Entry(value) { read[file] = entry } }
            for (folder, value) in object["listings"]?.objectValue ?? [:] {
                if let pair = value.arrayValue, pair.count == 2, let folders = pair[0].stringValue, let listing = pair[1].stringValue {
                    listings[folder] = (folders, listing)
                }
            }
        }
        state.withLock { state in
            state.loaded.insert(path)
            for (file, entry) in read where state.entries[file] == nil { state.entries[file] = entry }
            for (folder, entry) in listings where state.listings[folder] == nil { state.listings[folder] = entry }
        }
    }

    /// Writes the hashes to `path` when any was added since the last save.
    public func save(to path: String) throws {
        let snapshot: JSONValue? = state.withLock { state in
            guard state.dirty else { return nil }
            state.dirty = false
            return .object([
                "files": .object(state.entries.mapValues(\.json)),
                "listings": .object(state.listings.mapValues { .array([.string($0.folders), .string($0.listing)]) }),
            ])
        }
        guard let object = snapshot else { return }
        try FileSystem.createDirectory(FileSystem.parent(of: path))
        try AtomicFile.write(JSONWriter.canonical(object) + "\n", to: path)
    }

    /// The content hash of the file at `path`: remembered when its status is unchanged, else
    /// read in chunks and hashed.
    public func hash(ofFile path: String) throws -> ContentHash {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw LocatedError(path: path, line: nil, message: "cannot read: \(String(cString: strerror(errno)))")
        }
        let key = path.hasPrefix("/") ? path : FileSystem.join(Self.currentDirectory(), path)
        let size = Int64(info.st_size), inode = UInt64(info.st_ino)
        let modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        let changed = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
        if let known = state.withLock({ $0.entries[key] }), known.size == size, known.inode == inode, known.modified == modified,
            known.changed == changed, let hash = ContentHash(hex: known.hash) {
            return hash
        }
        let hash = try Self.streamingHash(path)
        // A file changed in the last moments may change again within the clock's granularity
        // without its times moving (git's "racy" entries): it is hashed again next time.
        guard !Self.isRecent(max(modified, changed)) else { return hash }
        let entry = Entry(size: size, inode: inode, modified: modified, changed: changed, hash: hash.hex)
        state.withLock { state in
            state.entries[key] = entry
            state.dirty = true
        }
        return hash
    }

    /// The hash of a collection's listing (`compute`: its files' names, sizes and times), taken
    /// again only when one of its folders changed status (a file added, removed, renamed or
    /// replaced changes its folder's times; a file rewritten in place does not).
    public func listingHash(of folder: String, compute: () throws -> String) throws -> String {
        let key = folder.hasPrefix("/") ? folder : FileSystem.join(Self.currentDirectory(), folder)
        let (folders, newest) = try Self.foldersStatus(key)
        if let known = state.withLock({ $0.listings[key] }), known.folders == folders { return known.listing }
        let listing = try compute()
        guard !Self.isRecent(newest) else { return listing }
        state.withLock { state in
            state.listings[key] = (folders, listing)
            state.dirty = true
        }
        return listing
    }

    /// The hash of the status (inode, modification and status-change times) of a folder and
    /// every folder under it; files are only named, never looked at.
    static func foldersStatus(_ root: String) throws -> (hash: String, newest: Int64) {
        var lines: [String] = []
        var newest: Int64 = 0
        func visit(_ path: String, _ relative: String) throws {
            var info = stat()
            guard lstat(path, &info) == 0 else { throw LocatedError(path: path, line: nil, message: "cannot list folder: \(String(cString: strerror(errno)))") }
            lines.append("\(relative)\t\(info.st_ino)\t\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)\t\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)")
            newest = max(newest, Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
                         Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec))
            guard let directory = opendir(path) else { throw LocatedError(path: path, line: nil, message: "cannot list folder: \(String(cString: strerror(errno)))") }
            defer { closedir(directory) }
            var folders: [String] = []
            while let entry = readdir(directory) {
                let name = FileSystem.entryName(entry)
                if name == "." || name == ".." { continue }
                var isFolder = entry.pointee.d_type == UInt8(DT_DIR)
                if entry.pointee.d_type == UInt8(DT_UNKNOWN) {
                    var child = stat()
                    isFolder = lstat(FileSystem.join(path, name), &child) == 0 && child.st_mode & S_IFMT == S_IFDIR
                }
                if isFolder { folders.append(name) }
            }
            for name in folders { try visit(FileSystem.join(path, name), relative.isEmpty ? name : relative + "/" + name) }
        }
        try visit(root, "")
        return (ContentHash(ofString: lines.sorted().joined(separator: "\n")).hex, newest)
    }

    /// Whether a time (nanoseconds since the epoch) is within two seconds of now.
    static func isRecent(_ nanoseconds: Int64) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return nanoseconds > (Int64(now.tv_sec) - 2) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "." }
        return String(cString: buffer)
    }

    /// XXH3-128 of a file read a megabyte at a time.
    static func streamingHash(_ path: String) throws -> ContentHash {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw LocatedError(path: path, line: nil, message: "cannot read: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let hasher = StreamingContentHash()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw LocatedError(path: path, line: nil, message: "cannot read: \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            hasher.update(buffer[0..<count])
        }
        return hasher.finish()
    }
}
