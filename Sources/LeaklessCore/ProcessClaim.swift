import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// A file that says which process holds something (`host pid`), so others can tell a claim that
/// is held from one its process left behind when it was killed.
public enum ProcessClaim {
    public static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    /// What this process writes in a claim.
    public static var content: String { "\(hostName) \(getpid())\n" }

    /// A claim left by a process that is gone: one of this machine whose pid no longer runs (or
    /// is this process's own, which callers never leave held), or one older than `staleSeconds`
    /// (a process on another node, killed before it could remove it).
    public static func isStale(_ claim: String, staleSeconds: Double) -> Bool {
        var info = stat()
        guard stat(claim, &info) == 0 else { return false }
        let age = Date().timeIntervalSince1970 - Double(info.st_mtim.tv_sec)
        if age > staleSeconds { return true }
        guard let bytes = try? FileSystem.read(claim) else { return false }
        let fields = String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        // Being written this moment, or unreadable: judged by age alone.
        guard fields.count == 2, String(fields[0]) == hostName, let pid = Int32(fields[1]) else { return false }
        return pid == getpid() || (kill(pid, 0) != 0 && errno == ESRCH)
    }
}
