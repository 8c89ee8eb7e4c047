/// What model calls have cost in a workdir over every run (`spent.json`): the budget is the
/// workdir's. Read by the driver before a stage, added to after it (or by the merge of a
/// sharded stage, on whichever node it runs).
public enum SpendingLedger {
    /// The spending so far (nothing when the workdir never paid).
    public static func load(_ path: String) throws -> Budget {
        guard FileSystem.exists(path) else { return Budget() }
        do {
            return Budget(json: try JSONParser.parse(bytes: try FileSystem.read(path)))
        } catch let error as JSONParser.SyntaxError {
            throw LocatedError(path: path, line: nil, message: "not a spending ledger: \(error)")
        }
    }

    /// Adds a stage process's spending file to the ledger, then removes the file (a crash between
    /// the two counts it twice: more than was spent, never less). Returns the new total.
    @discardableResult
    public static func book(_ file: String, into path: String) throws -> Budget {
        var total = try load(path)
        guard FileSystem.exists(file) else { return total }
        let used = Budget(json: try JSONParser.parse(bytes: try FileSystem.read(file)))
        total = total.adding(used)
        try AtomicFile.write(JSONWriter.pretty(total.json), to: path)
        try FileSystem.remove(file)
        return total
    }
}

extension Budget {
    public func adding(_ other: Budget) -> Budget {
        Budget(usd: usd + other.usd, requests: requests + other.requests, tokens: tokens + other.tokens)
    }

    /// What is left of these limits after `spent` (a limit of zero stays unlimited).
    public func remaining(after spent: Budget) -> Budget {
        Budget(usd: usd > 0 ? usd - spent.usd : 0, requests: requests > 0 ? requests - spent.requests : 0,
               tokens: tokens > 0 ? tokens - spent.tokens : 0)
    }

    /// Shard `index`'s part of these limits when `count` shards share them (the remainder to the
    /// first shards, so the parts add up to the whole), less what the shard already spent; nil
    /// when that part is used up (the shard must not send a request).
    public func share(_ index: Int, of count: Int, lessSpent spent: Budget) -> Budget? {
        func part(_ total: Int) -> Int { total / count + (index < total % count ? 1 : 0) }
        let share = Budget(
            usd: usd > 0 ? usd / Double(count) - spent.usd : 0,
            requests: requests > 0 ? part(requests) - spent.requests : 0,
            tokens: tokens > 0 ? part(tokens) - spent.tokens : 0)
        if (usd > 0 && share.usd <= 0) || (requests > 0 && share.requests <= 0) || (tokens > 0 && share.tokens <= 0) { return nil }
        return share
    }
}
