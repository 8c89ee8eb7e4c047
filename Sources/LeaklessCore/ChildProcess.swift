import Foundation
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A program the driver starts and waits for. It runs in a process group of its own, so a
/// Ctrl-C at the terminal reaches the driver alone, which passes it on once (a second one would
/// end the stage at once, losing the requests in flight). The wait blocks in `waitpid`: no
/// polling, so a stage's wall time is its own.
public enum ChildProcess {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public enum Exit: Equatable, Sendable {
        case status(Int32)
        case signal(Int32)
    }

    /// Runs `executable` with `arguments` and `environment` additions, and waits for it.
    public static func run(_ executable: String, arguments: [String], environment: [String: String] = [:]) throws -> Exit {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)

        var merged = ProcessInfo.processInfo.environment
        for (name, value) in environment { merged[name] = value }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, nil, &attributes, argv, envp)
        guard status == 0 else {
            throw Failure(description: "cannot start \(executable): \(String(cString: strerror(status)))")
        }
        Interruption.forward(to: pid)
        defer { Interruption.forward(to: 0) }
        // A signal that came just before the child could be told of it.
        if let signal = Interruption.receivedSignal { kill(pid, signal) }
        var waitStatus: Int32 = 0
        while waitpid(pid, &waitStatus, 0) < 0 {
            guard errno == EINTR else {
                throw Failure(description: "waiting for \(executable): \(String(cString: strerror(errno)))")
            }
        }
        if waitStatus & 0x7F == 0 { return .status((waitStatus >> 8) & 0xFF) }
        return .signal(waitStatus & 0x7F)
    }
}
