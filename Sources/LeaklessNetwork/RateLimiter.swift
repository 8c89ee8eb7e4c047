import Foundation

/// Requests-per-minute and tokens-per-minute budgets of one endpoint, as two token buckets that
/// refill continuously and hold at most ten seconds' worth, so a burst cannot spend a whole
/// minute's allowance at once. Shared by every worker of a stage; `acquire` blocks the caller.
/// `@unchecked Sendable`: the credits and the clock are read and written only with `lock` held.
public final class RateLimiter: @unchecked Sendable {
    private let lock = NSLock()
    private let requestsPerSecond: Double
    private let tokensPerSecond: Double
    private var requestCredit: Double
    private var tokenCredit: Double
    private var last: Double
    private var waitingUntil: Double = 0

    /// Zero means no limit.
    public init(requestsPerMinute: Int, tokensPerMinute: Int) {
        requestsPerSecond = Double(requestsPerMinute) / 60
        tokensPerSecond = Double(tokensPerMinute) / 60
        requestCredit = 0
        tokenCredit = 0
        last = Self.now()
        requestCredit = requestCapacity
        tokenCredit = tokenCapacity
    }

    static func now() -> Double { Date().timeIntervalSinceReferenceDate }

    private var requestCapacity: Double { max(1, requestsPerSecond * 10) }
    private var tokenCapacity: Double { tokensPerSecond * 10 }

    private func refill(at time: Double) {
        let elapsed = max(0, time - last)
        last = time
        if requestsPerSecond > 0 { requestCredit = min(requestCapacity, requestCredit + elapsed * requestsPerSecond) }
        if tokensPerSecond > 0 { tokenCredit = min(tokenCapacity, tokenCredit + elapsed * tokensPerSecond) }
    }

    /// Waits until one request of about `tokens` tokens may go; returns false when `cancelled`
    /// turned true while waiting. A request larger than the bucket waits for a full bucket.
    public func acquire(tokens: Int, cancelled: () -> Bool = { false }) -> Bool {
        if requestsPerSecond == 0 && tokensPerSecond == 0 { return true }
        while true {
            lock.lock()
            refill(at: Self.now())
            let needTokens = tokensPerSecond > 0 ? min(Double(tokens), tokenCapacity) : 0
            var wait = 0.0
            if requestsPerSecond > 0 && requestCredit < 1 { wait = max(wait, (1 - requestCredit) / requestsPerSecond) }
            if tokensPerSecond > 0 && tokenCredit < needTokens { wait = max(wait, (needTokens - tokenCredit) / tokensPerSecond) }
            if wait == 0 {
                if requestsPerSecond > 0 { requestCredit -= 1 }
                if tokensPerSecond > 0 { tokenCredit -= needTokens }
                lock.unlock()
                return true
            }
            waitingUntil = max(waitingUntil, Self.now() + wait)
            lock.unlock()
            if cancelled() { return false }
            Thread.sleep(forTimeInterval: min(wait, 0.1))
        }
    }

    /// When a caller waiting for its turn may go (reference-date seconds), if one is waiting now.
    public var waitUntil: Double? {
        lock.lock()
        defer { lock.unlock() }
        return waitingUntil > Self.now() ? waitingUntil : nil
    }

    /// After the reply: corrects the token bucket by what the request really used.
    public func settle(estimatedTokens: Int, actualTokens: Int) {
        guard tokensPerSecond > 0 else { return }
        lock.lock()
        tokenCredit = min(tokenCapacity, tokenCredit + Double(estimatedTokens - actualTokens))
        lock.unlock()
    }
}
