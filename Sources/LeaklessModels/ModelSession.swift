import Foundation
import LeaklessCore
import LeaklessNetwork

/// Everything a model-backed stage shares across its workers: one connection per worker, one
/// endpoint (rate budget, in-flight limit, retries) per backend, the reply cache, and the usage
/// meter with the run's remaining budget.
/// `@unchecked Sendable`: its tables of clients and its failure are touched only with `lock` held.
public final class ModelSession: @unchecked Sendable {
    public let cache: ReplyCache
    public let meter: UsageMeter
    public let concurrency: Int
    private let handles: [CurlHTTP]
    private var endpoints: [String: Endpoint] = [:]
    private var chats: [String: ChatClient] = [:]
    private var imageClients: [String: ImageClient] = [:]
    private let lock = NSLock()
    private var failure: String?

    /// - Parameter backends: the network backends the stage uses; the stage's concurrency is the
    ///   largest `max_in_flight` among them.
    /// - Parameter requireKeys: false to plan without sending (a missing key is then no error).
    public init(backends: [BackendConfig], cache: String, budget: Budget, requireKeys: Bool = true,
                environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.cache = ReplyCache(folder: cache)
        self.meter = UsageMeter(budget: budget)
        concurrency = backends.map { $0.typed.maxInFlight }.max() ?? 1
        handles = try (0..<concurrency).map { _ in try CurlHTTP() }
        for backend in backends where endpoints[backend.name] == nil {
            let settings = backend.typed
            var key: String?
            let variable = settings.apiKeyEnv
            if !variable.isEmpty {
                key = environment[variable]
                if requireKeys && (key ?? "").isEmpty {
                    throw RecordError("backend '\(backend.name)' reads its API key from the environment variable \(variable), which is not set")
                }
            }
            let endpoint = Endpoint(
                baseURL: settings.baseURL, apiKey: key, timeout: settings.timeout,
                policy: RetryPolicy(maxRetries: settings.maxRetries, baseSeconds: settings.retryBaseSeconds),
                limiter: RateLimiter(requestsPerMinute: settings.requestsPerMinute, tokensPerMinute: settings.tokensPerMinute),
                maxInFlight: settings.maxInFlight)
            endpoints[backend.name] = endpoint
        }
        for endpoint in endpoints.values {
            // A budget only refuses new reservations; requests already reserved may finish.
            endpoint.shouldStop = { [weak self] in Interruption.requested || self?.failed == true }
        }
    }

    public func http(_ worker: Int) -> CurlHTTP { handles[worker % handles.count] }

    public func chat(_ backend: BackendConfig) -> ChatClient {
        lock.lock()
        defer { lock.unlock() }
        if let client = chats[backend.name] { return client }
        let client = ChatClient(backend: backend, endpoint: endpoints[backend.name]!, cache: cache, meter: meter)
        chats[backend.name] = client
        return client
    }

    public func moderation(_ backend: BackendConfig) -> ModerationClient {
        ModerationClient(backend: backend, endpoint: endpoints[backend.name]!, cache: cache, meter: meter)
    }

    public func images(_ backend: BackendConfig, blobs: String) -> ImageClient {
        lock.lock()
        defer { lock.unlock() }
        if let client = imageClients[backend.name] { return client }
        let client = ImageClient(backend: backend, endpoint: endpoints[backend.name]!, cache: cache, meter: meter, blobFolder: blobs)
        imageClients[backend.name] = client
        return client
    }

    /// Requests sent again after a 429, a 5xx, a timeout or a dropped connection, over every backend.
    public var retries: Int { endpoints.values.reduce(0) { $0 + $1.counters["retries"] } }

    /// What a backend's requests wait for now (a rate limit, a Retry-After), for the progress line.
    public var waiting: String? {
        for (name, endpoint) in endpoints.sorted(by: { $0.key < $1.key }) {
            if let waiting = endpoint.waiting { return "\(name): \(waiting)" }
        }
        return nil
    }

    /// Why no new work should start: Ctrl-C, the budget, or a failure of another worker.
    public var stopReason: String? {
        if Interruption.requested { return "interrupted" }
        if let budget = meter.budgetStop { return budget }
        lock.lock()
        defer { lock.unlock() }
        return failure
    }

    private var failed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return failure != nil
    }

    public func requestStop(_ reason: String) {
        lock.lock()
        if failure == nil { failure = reason }
        lock.unlock()
    }

    /// Usage and traffic, for the stage's stats: tokens, cost, cache hits and misses, re-asks,
    /// refusals, retries per endpoint.
    public var stats: JSONValue {
        var traffic: [String: JSONValue] = [:]
        for (name, endpoint) in endpoints {
            traffic[name] = .object(endpoint.counters.snapshot.mapValues { .int(Int64($0)) })
        }
        var fields = meter.json.objectValue ?? [:]
        fields["endpoints"] = .object(traffic)
        fields["spent"] = meter.spent.json
        return .object(fields)
    }
}
