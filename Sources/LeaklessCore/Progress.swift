import Synchronization
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A one-line progress report on stderr, at most a few times a second, for long work.
public final class Progress: Sendable {
    private let label: String
    private let interval: Double
    private let lastReport: Mutex<Double>
    private let started: Double
    private let interactive: Bool

    public init(label: String, interval: Double = 1.0) {
        self.label = label
        self.interval = interval
        self.started = Progress.now()
        self.lastReport = Mutex(started)
        self.interactive = isatty(STDERR_FILENO) != 0
    }

    public static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    public var elapsed: Double { Progress.now() - started }

    /// Reports `message()` if the interval has passed since the last report.
    public func tick(_ message: @autoclosure () -> String) {
        let now = Progress.now()
        let due = lastReport.withLock { last -> Bool in
            guard now - last >= interval else { return false }
            last = now
            return true
        }
        if due { emit(message(), final: false) }
    }

    public func finish(_ message: String) {
        emit(message, final: true)
    }

    private func emit(_ message: String, final: Bool) {
        let line = "[\(label)] \(message)"
        if interactive {
            FileHandleOutput.standardError("\r\u{1B}[K" + line + (final ? "\n" : ""))
        } else {
            FileHandleOutput.standardError(line + "\n")
        }
    }
}

public enum FileHandleOutput {
    public static func standardError(_ text: String) {
        // One write(2) a message, so lines from several threads or processes never interleave.
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { write(STDERR_FILENO, $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 { break }
            offset += written
        }
    }
}
