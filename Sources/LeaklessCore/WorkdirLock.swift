import Foundation
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One `leakless run` per workdir at a time: an advisory lock on `<workdir>/lock`, which holds
/// the holder's pid. The kernel drops the lock when its holder dies, however it dies, so a lock
/// is never stale; the pid in the file only names who holds it.
public final class WorkdirLock {
    public struct Held: Error, CustomStringConvertible {
        public let description: String
    }

    private let descriptor: Int32
    public let path: String

    public init(workdir: String) throws {
        try FileSystem.createDirectory(workdir)
        path = FileSystem.join(workdir, "lock")
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw LocatedError(path: path, line: nil, message: "cannot open the workdir lock: \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? FileSystem.read(path)).map { String(decoding: $0, as: UTF8.self) }?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(descriptor)
            throw Held(description: "the workdir \(workdir) is in use by another leakless run\(holder.isEmpty ? "" : " (pid \(holder))"); wait for it to finish or stop it first")
        }
        ftruncate(descriptor, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(descriptor, $0, strlen($0)) }
        self.descriptor = descriptor
    }

    deinit {
        ftruncate(descriptor, 0)
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
