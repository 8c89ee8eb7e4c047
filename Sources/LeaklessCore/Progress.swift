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

    /// On a terminal one line updated a few times a second; otherwise (a log) a line every five seconds.
    public init(label: String, interval: Double? = nil) {
        self.label = label
        let interactive = isatty(STDERR_FILENO) != 0
        self.interactive = interactive
        self.interval = interval ?? (interactive ? 0.5 : 5)
        self.started = Progress.now()
        self.lastReport = Mutex(started)
    }

    /// "120/684 (17.5%), 40.2/s, ETA 14 s", or "120, 40.2/s" without a known total.
    public func rate(done: Int, total: Int?) -> String {
        let seconds = max(elapsed, 1e-9)
        let perSecond = Double(done) / seconds
        var text = total.map { total in
            "\(done)/\(total) (\(String(format1: total == 0 ? 100 : Double(done) * 100 / Double(total), digits: 1))%)"
        } ?? "\(done)"
        text += ", \(String(format1: perSecond, digits: 1))/s"
        if let total, done > 0, done < total { text += ", ETA \(formatSeconds(Double(total - done) / perSecond))" }
        return text
    }

    public static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    public var elapsed: Double { Progress.now() - started }

    /// Whether the next `tick` would report (to skip building a costly message).
    public var isDue: Bool {
        let now = Progress.now()
        return lastReport.withLock { now - $0 >= interval }
    }

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
