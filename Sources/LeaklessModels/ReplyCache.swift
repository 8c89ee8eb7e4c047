import Foundation
import LeaklessCore
#if canImport(Glibc)
    import Glibc
#endif

/// Every good model reply, stored under the hash of the request's content
/// (`cache/<first two hex>/<hash>.json`, each written atomically the moment the reply arrives),
/// so a rerun, or a run resumed after the process was killed, never asks twice. The key is
/// built from what decides the reply (model, messages with images by hash, sampling
/// parameters, schema, template), never from the endpoint's address or credentials.
public final class ReplyCache: Sendable {
    public let folder: String
    /// The requests being sent now, by this process and by any other sharing the folder (the
    /// shards of a stage on other nodes), so an identical one waits for its reply instead of going too.
    public let inFlight: CacheFlight

    public init(folder: String) {
        self.folder = folder
        inFlight = CacheFlight(folder: folder)
    }

    public func path(for key: ContentHash) -> String {
        FileSystem.join(folder, String(key.hex.prefix(2)), "\(key.hex).json")
    }

    /// The stored reply, or nil; an unreadable entry counts as missing and is replaced later.
    public func lookup(_ key: ContentHash) -> JSONValue? {
        let file = path(for: key)
        guard FileSystem.exists(file), let bytes = try? FileSystem.read(file) else { return nil }
        return try? JSONParser.parse(bytes: bytes)
    }

    public func store(_ key: ContentHash, _ value: JSONValue) throws {
        try AtomicFile.write(JSONWriter.canonical(value), to: path(for: key))
    }
}

/// What one stage spent on models, counted across its workers, and the budget it must stay
/// within. A request is reserved at its estimated size before it goes; when the reservation
/// would pass the budget the stage stops taking new records.
/// `@unchecked Sendable`: counts, reservations and the budget state change only with `lock` held
/// (one lock, since a reservation must check and book in one step).
public final class UsageMeter: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    private var cost = 0.0
    private var reservedCost = 0.0
    private var reservedTokens = 0
    private var reservedRequests = 0
    public let budget: Budget
    private var exceeded: String?

    public init(budget: Budget) { self.budget = budget }

    public func add(_ name: String, _ amount: Int = 1) {
        lock.lock()
        counts[name, default: 0] += amount
        lock.unlock()
    }

    public subscript(name: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return counts[name] ?? 0
    }

    /// Why the budget stopped the stage, or nil.
    public var budgetStop: String? {
        lock.lock()
        defer { lock.unlock() }
        return exceeded
    }

    private var spentTokens: Int { (counts["prompt_tokens"] ?? 0) + (counts["completion_tokens"] ?? 0) }

    /// Reserves a request; false (and the stage stops) when it could pass the budget.
    public func reserve(tokens: Int, cost estimate: Double) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if exceeded != nil { return false }
        if budget.requests > 0 && (counts["requests"] ?? 0) + reservedRequests + 1 > budget.requests {
            exceeded = "budget of \(budget.requests) requests reached"
        } else if budget.tokens > 0 && spentTokens + reservedTokens + tokens > budget.tokens {
            exceeded = "budget of \(budget.tokens) tokens reached"
        } else if budget.usd > 0 && cost + reservedCost + estimate > budget.usd {
            exceeded = "budget of \(String(format1: budget.usd, digits: 2)) USD reached"
        }
        if exceeded != nil { return false }
        reservedRequests += 1
        reservedTokens += tokens
        reservedCost += estimate
        return true
    }

    /// Replaces a reservation by what the request really used (nil: it failed, nothing spent).
    public func settle(reservedTokens tokens: Int, reservedCost estimate: Double,
                       promptTokens: Int?, completionTokens: Int?, cost actual: Double, images: Int = 0) {
        lock.lock()
        reservedRequests -= 1
        reservedTokens -= tokens
        reservedCost -= estimate
        if let promptTokens {
            counts["requests", default: 0] += 1
            counts["prompt_tokens", default: 0] += promptTokens
            counts["completion_tokens", default: 0] += completionTokens ?? 0
            counts["images_generated", default: 0] += images
            cost += actual
        }
        lock.unlock()
    }

    public var json: JSONValue {
        lock.lock()
        defer { lock.unlock() }
        var fields = counts.mapValues { JSONValue.int(Int64($0)) }
        fields["cost_usd"] = .double((cost * 1_000_000).rounded() / 1_000_000)
        return .object(fields)
    }

    public var spent: Budget {
        lock.lock()
        defer { lock.unlock() }
        return Budget(usd: cost, requests: counts["requests"] ?? 0, tokens: spentTokens)
    }
}

/// One request at a time per key, across threads and across processes that share the cache
/// folder. Within a process a `SingleFlight`; between processes a claim file beside the reply,
/// `<hash>.inflight`, made with O_CREAT|O_EXCL (atomic on NFS too, where flock is not to be
/// trusted) and removed when the request ends. A claim of a dead process on this machine, or
/// older than `staleSeconds` (a process on another node killed before it could remove it), is
/// taken over.
public final class CacheFlight: Sendable {
    private let local = SingleFlight()
    public let folder: String
    public let staleSeconds: Double

    public init(folder: String, staleSeconds: Double = 900) {
        self.folder = folder
        self.staleSeconds = staleSeconds
    }

    func claimPath(_ key: ContentHash) -> String {
        FileSystem.join(folder, String(key.hex.prefix(2)), "\(key.hex).inflight")
    }

    func replyPath(_ key: ContentHash) -> String {
        FileSystem.join(folder, String(key.hex.prefix(2)), "\(key.hex).json")
    }

    /// True: the caller leads, sends the request, and must call `finish(key)` after. False:
    /// another thread or process had it in flight; this returned once that one ended (look in
    /// the cache, and lead if the reply is not there).
    public func lead(_ key: ContentHash) -> Bool {
        guard local.lead(key) else { return false }
        let claim = claimPath(key)
        try? FileSystem.createDirectory(FileSystem.parent(of: claim))
        var pause: UInt32 = 5_000
        while true {
            let descriptor = open(claim, O_CREAT | O_EXCL | O_WRONLY, 0o644)
            if descriptor >= 0 {
                let text = Array(ProcessClaim.content.utf8)
                _ = text.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
                close(descriptor)
                // The reply may have come while this waited: then nothing is to be sent.
                if FileSystem.exists(replyPath(key)) {
                    finish(key)
                    return false
                }
                return true
            }
            // A folder where no claim can be made (read-only): each process on its own, as before.
            guard errno == EEXIST else { return true }
            if FileSystem.exists(replyPath(key)) || CacheFlight.isStale(claim, staleSeconds: staleSeconds) {
                if FileSystem.exists(replyPath(key)) {
                    local.finish(key)
                    return false
                }
                unlink(claim)
                continue
            }
            usleep(pause)
            pause = min(pause * 2, 200_000)
        }
    }

    public func finish(_ key: ContentHash) {
        unlink(claimPath(key))
        local.finish(key)
    }

    public static func isStale(_ claim: String, staleSeconds: Double) -> Bool {
        ProcessClaim.isStale(claim, staleSeconds: staleSeconds)
    }
}
