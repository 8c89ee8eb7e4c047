import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The few file-system operations the store needs, with errors that name the path.
public enum FileSystem {
    public static func join(_ parts: String...) -> String {
        join(parts)
    }

    public static func join(_ parts: [String]) -> String {
        var result = ""
        for part in parts where !part.isEmpty {
            if part.hasPrefix("/") || result.isEmpty {
                result = part
            } else {
                result += (result.hasSuffix("/") ? "" : "/") + part
            }
        }
        return result
    }

    public static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    public static func lastComponent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    public static func exists(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path)
    }

    public static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    public static func createDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw LocatedError(path: path, line: nil, message: "cannot create folder: \(error.localizedDescription)")
        }
    }

    /// The non-empty lines of a file, read in chunks.
    public static func countLines(_ path: String) throws -> Int {
        let reader = try LineReader(path: path)
        var count = 0
        while let line = try reader.nextLine() {
            if !line.isEmpty { count += 1 }
        }
        return count
    }

    /// `relative` inside `folder`, or why it is not: an absolute path, or one that leaves the
    /// folder once `..` and symbolic links are resolved, is refused, and nothing there is opened.
    public static func resolve(_ relative: String, inside folder: String) -> Result<String, RecordError> {
        guard !relative.hasPrefix("/") else { return .failure(RecordError("'\(relative)' is an absolute path, outside \(folder)")) }
        guard let root = realpath(folder, nil) else { return .failure(RecordError("the folder \(folder) does not exist")) }
        defer { free(root) }
        let rootPath = String(cString: root)
        let joined = join(rootPath, relative)
        guard let resolved = realpath(joined, nil) else {
            // Not there: judge by the words alone, without following anything.
            let parts = relative.split(separator: "/")
            var depth = 0
            for part in parts {
                depth += part == ".." ? -1 : (part == "." ? 0 : 1)
                if depth < 0 { return .failure(RecordError("'\(relative)' leaves \(folder)")) }
            }
            return .failure(RecordError("'\(relative)' does not exist in \(folder)"))
        }
        defer { free(resolved) }
        let path = String(cString: resolved)
        guard path.hasPrefix(rootPath.hasSuffix("/") ? rootPath : rootPath + "/") else {
            return .failure(RecordError("'\(relative)' leaves \(folder) (it resolves to a path outside it)"))
        }
        return .success(path)
    }

    public static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = exists(path) ? "cannot read" : "no such file"
            throw LocatedError(path: path, line: nil, message: reason)
        }
        return [UInt8](data)
    }

    public static func readText(_ path: String) throws -> String {
        let bytes = try read(path)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw LocatedError(path: path, line: nil, message: "not valid UTF-8 text")
        }
        return text
    }

    /// Regular files under `path`, recursively, as paths relative to it, sorted; hidden files skipped.
    public static func files(under path: String) throws -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: path) else {
            throw LocatedError(path: path, line: nil, message: "cannot list folder")
        }
        var result: [String] = []
        while let item = enumerator.nextObject() as? String {
            if FileSystem.lastComponent(of: item).hasPrefix(".") { continue }
            if !isDirectory(join(path, item)) { result.append(item) }
        }
        return result.sorted()
    }

    /// The name of an entry `readdir` returned, read up to its terminating zero. A `dirent` is
    /// only as long as its name needs (`d_reclen`), so its whole `d_name` array must not be
    /// loaded: at the end of the directory buffer that reads past the mapping.
    public static func entryName(_ entry: UnsafeMutablePointer<dirent>) -> String {
        let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        return String(cString: UnsafeRawPointer(entry).advanced(by: offset).assumingMemoryBound(to: CChar.self))
    }

    /// Every entry under `path` that is not a folder, recursively (hidden ones too; links listed,
    /// not followed), with its size and whole seconds of modification time, as `lstat` gives them:
    /// one system call a file, where Foundation's attributes also look up owner and group names.
    public static func listing(under path: String) throws -> [(path: String, size: Int, modified: Int)] {
        var result: [(path: String, size: Int, modified: Int)] = []
        func walk(_ relative: String) throws {
            let folder = relative.isEmpty ? path : join(path, relative)
            guard let directory = opendir(folder) else {
                throw LocatedError(path: folder, line: nil, message: "cannot list folder: \(String(cString: strerror(errno)))")
            }
            defer { closedir(directory) }
            while let entry = readdir(directory) {
                let name = entryName(entry)
                if name == "." || name == ".." { continue }
                let item = relative.isEmpty ? name : relative + "/" + name
                var info = stat()
                guard lstat(join(path, item), &info) == 0 else { continue }
                if info.st_mode & S_IFMT == S_IFDIR {
                    try walk(item)
                } else {
                    result.append((item, Int(info.st_size), Int(info.st_mtim.tv_sec)))
                }
            }
        }
        try walk("")
        return result
    }

    public static func remove(_ path: String) throws {
        guard exists(path) else { return }
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            throw LocatedError(path: path, line: nil, message: "cannot remove: \(error.localizedDescription)")
        }
    }

    /// Moves a finished folder into place, replacing what was there.
    public static func replaceDirectory(_ path: String, with temporary: String) throws {
        try remove(path)
        do {
            try FileManager.default.moveItem(atPath: temporary, toPath: path)
        } catch {
            throw LocatedError(path: path, line: nil, message: "cannot move into place: \(error.localizedDescription)")
        }
    }

    /// The content hash of a file, or of every file under a folder (names and bytes), so that a
    /// data folder's key changes when any file in it does.
    public static func contentHash(of path: String) throws -> ContentHash {
        if isDirectory(path) {
            var entries: [String: JSONValue] = [:]
            for file in try files(under: path) {
                entries[file] = .string(try FileHashCache.shared.hash(ofFile: join(path, file)).hex)
            }
            return ContentHash(ofJSON: .object(entries))
        }
        return try FileHashCache.shared.hash(ofFile: path)
    }
}
