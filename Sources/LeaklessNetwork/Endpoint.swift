import Foundation
import Synchronization
import LeaklessCore

/// Why a request to a model endpoint failed for good.
public enum EndpointError: Error, CustomStringConvertible {
    /// The endpoint said no in a way another try cannot fix (400, 401, 403, 404, ...).
    case rejected(status: Int, url: String, message: String)
    /// Every retry failed.
    case exhausted(attempts: Int, url: String, last: String)
    /// Ctrl-C or a budget stopped the stage before the request was answered.
    case stopped

    public var description: String {
        switch self {
        case .rejected(let status, let url, let message):
            return "POST \(url) answered \(status): \(message)"
        case .exhausted(let attempts, let url, let last):
            return "POST \(url) failed \(attempts) times; last: \(last)"
        case .stopped:
            return "stopped before the request was answered"
        }
    }
}

/// How hard to retry: exponential backoff from `baseSeconds`, doubled each time up to
/// `capSeconds`, with jitter (each delay drawn from its upper half), and the server's
/// Retry-After when it gives one.
public struct RetryPolicy: Sendable {
    public var maxRetries: Int
    public var baseSeconds: Double
    public var capSeconds: Double

    public init(maxRetries: Int, baseSeconds: Double, capSeconds: Double = 60) {
        self.maxRetries = maxRetries
        self.baseSeconds = baseSeconds
        self.capSeconds = capSeconds
    }

    public func delay(attempt: Int, retryAfter: Double?) -> Double {
        if let retryAfter { return min(max(retryAfter, 0), max(capSeconds, retryAfter)) }
        let ceiling = min(capSeconds, baseSeconds * pow(2, Double(attempt)))
        return ceiling * Double.random(in: 0.5...1)
    }

    /// Retry-After as seconds or an HTTP date; OpenAI's retry-after-ms when present.
    public static func retryAfter(_ headers: [String: String], now: Date = Date()) -> Double? {
        if let text = headers["retry-after-ms"], let ms = Double(text) { return ms / 1000 }
        guard let text = headers["retry-after"] else { return nil }
        if let seconds = Double(text) { return seconds }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: text) else { return nil }
        return max(0, date.timeIntervalSince(now))
    }
}

/// A model endpoint over HTTP: JSON POSTs with the API key, the rate budget, and retries. The
/// key goes into the Authorization header and nowhere else: every message that leaves this
/// type has it scrubbed, in case a server echoes it.
public final class Endpoint: Sendable {
    public let baseURL: String
    private let apiKey: String?
    public let timeout: Double
    public let policy: RetryPolicy
    public let limiter: RateLimiter
    public let counters = LockedCounters()
    /// Polled between tries and while waiting: true stops the request (Ctrl-C, a budget).
    public var shouldStop: @Sendable () -> Bool {
        get { stopCheck.withLock { $0 } }
        set { stopCheck.withLock { $0 = newValue } }
    }
    private let stopCheck = Mutex<@Sendable () -> Bool>({ Interruption.requested })

    /// At most this many requests of this endpoint in flight, whichever stage worker sends them.
    private let slots: DispatchSemaphore

    public init(baseURL: String, apiKey: String?, timeout: Double, policy: RetryPolicy, limiter: RateLimiter, maxInFlight: Int = 1024) {
        slots = DispatchSemaphore(value: max(1, maxInFlight))
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.apiKey = apiKey?.isEmpty == true ? nil : apiKey
        self.timeout = timeout
        self.policy = policy
        self.limiter = limiter
    }

    public func url(_ path: String) -> String { baseURL + path }

    public func scrub(_ text: String) -> String {
        guard let apiKey, apiKey.count >= 4 else { return text }
        return text.replacingOccurrences(of: apiKey, with: "[redacted]")
    }

    private let retryUntil = Mutex<Double>(0)

    /// What the endpoint's callers are waiting for now, and until when: its rate limit, or a
    /// retry after a 429 (Retry-After) or an error; nil when nobody waits.
    public var waiting: String? {
        let now = Date().timeIntervalSinceReferenceDate
        func clock(_ time: Double) -> String {
            let formatter = DateFormatter()
            formatter.dateFormat = "HH:mm:ss"
            return formatter.string(from: Date(timeIntervalSinceReferenceDate: time))
        }
        if let until = limiter.waitUntil { return "waiting on the rate limit (rpm/tpm) until \(clock(until))" }
        let retry = retryUntil.withLock { $0 }
        if retry > now { return "waiting to retry (Retry-After or backoff) until \(clock(retry))" }
        return nil
    }

    /// The response with every occurrence of the API key replaced.
    func scrubbed(_ response: HTTPResponse) -> HTTPResponse {
        guard let apiKey, apiKey.count >= 4 else { return response }
        let key = Array(apiKey.utf8)
        guard let first = key.first, response.body.contains(first) else { return response }
        var body: [UInt8] = []
        body.reserveCapacity(response.body.count)
        var index = 0, found = false
        let bytes = response.body
        while index < bytes.count {
            if bytes[index] == first, index + key.count <= bytes.count, bytes[index..<index + key.count].elementsEqual(key) {
                body += Array("[redacted]".utf8)
                index += key.count
                found = true
            } else {
                body.append(bytes[index])
                index += 1
            }
        }
        return found ? HTTPResponse(status: response.status, headers: response.headers, body: body) : response
    }

    /// Sends `body` to `path` until a 2xx answer, retrying 408, 409, 429, 5xx, timeouts and
    /// dropped connections; other statuses fail at once with the endpoint's own message.
    public func post(_ path: String, body: [UInt8], estimatedTokens: Int, using http: CurlHTTP) throws -> HTTPResponse {
        let target = CurlHTTP.redacted(url(path))
        var headers = [("Content-Type", "application/json"), ("Accept", "application/json")]
        if let apiKey { headers.append(("Authorization", "Bearer \(apiKey)")) }
        let request = HTTPRequest(url: url(path), method: "POST", headers: headers, body: body, timeout: timeout)
        var attempt = 0
        while true {
            if shouldStop() { throw EndpointError.stopped }
            guard limiter.acquire(tokens: estimatedTokens, cancelled: shouldStop) else { throw EndpointError.stopped }
            counters.add("http_requests")
            let failure: String
            var retryAfter: Double?
            do {
                slots.wait()
                let exchanged = Result { try http.perform(request) }
                slots.signal()
                let response = try exchanged.get()
                if response.transparentRetries > 0 { counters.add("dropped_connections_resent_by_libcurl", response.transparentRetries) }
                // A key echoed in a good reply must not reach the cache, records or reports either.
                if (200..<300).contains(response.status) { return scrubbed(response) }
                let message = scrub(Self.errorMessage(response))
                guard [408, 409, 429].contains(response.status) || (response.status >= 500 && !Self.refusesImages(message)) else {
                    counters.add("http_rejected")
                    throw EndpointError.rejected(status: response.status, url: target, message: message)
                }
                counters.add(response.status == 429 ? "http_429" : "http_5xx")
                failure = "\(response.status): \(message)"
                retryAfter = RetryPolicy.retryAfter(response.headers)
            } catch let error as TransportError {
                guard error.isTransient else { throw EndpointError.rejected(status: 0, url: target, message: scrub(error.message)) }
                counters.add(error.code == 28 ? "timeouts" : "dropped_connections")
                failure = scrub(error.message)
            }
            guard attempt < policy.maxRetries else {
                throw EndpointError.exhausted(attempts: attempt + 1, url: target, last: failure)
            }
            counters.add("retries")
            let wait = policy.delay(attempt: attempt, retryAfter: retryAfter)
            attempt += 1
            let until = Date().addingTimeInterval(wait)
            retryUntil.withLock { $0 = max($0, until.timeIntervalSinceReferenceDate) }
            while Date() < until {
                if shouldStop() { throw EndpointError.stopped }
                Thread.sleep(forTimeInterval: min(0.05, max(0, until.timeIntervalSinceNow)))
            }
        }
    }

    /// A server error that another try cannot mend: the model takes no images (llama.cpp's
    /// server answers 500 "image input is not supported" when no vision projector is loaded).
    public static func refusesImages(_ message: String) -> Bool {
        let text = message.lowercased()
        return ["image input is not supported", "mmproj", "does not support image", "images are not supported",
                "image inputs are not supported", "not a multimodal model", "vision is not supported"].contains { text.contains($0) }
    }

    /// The endpoint's own words: OpenAI's `{"error": {"message": ...}}`, SD WebUI's
    /// `{"detail": ...}`, or the start of the body.
    static func errorMessage(_ response: HTTPResponse) -> String {
        if let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] {
            if let error = object["error"] as? [String: Any], let message = error["message"] as? String { return message }
            if let message = object["error"] as? String { return message }
            if let detail = object["detail"] as? String { return detail }
            if let message = object["message"] as? String { return message }
        }
        let text = String(decoding: response.body.prefix(300), as: UTF8.self)
            .replacingOccurrences(of: "\n", with: " ")
        return text.isEmpty ? "(empty body)" : text
    }
}
