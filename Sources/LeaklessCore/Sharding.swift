import Foundation

/// How a stage's input may be split into shards that run as separate processes (Slurm array
/// tasks) and are merged afterwards, without changing one byte of what the stage writes.
public enum Sharding: Sendable {
    /// Records are independent: any split into ranges of the input gives the same output.
    /// `block` > 1 keeps ranges whole multiples of it (a stage that judges records in batches).
    case records(block: Int)
    /// Records of one group (consecutive records with the same key) depend on each other: a
    /// shard boundary never falls inside a group.
    case groups(what: String, key: @Sendable (Record) -> String)
    /// The stage needs its whole input at once (a grouping over all records, one folder): it runs
    /// as a single job; `why` says so in `leakless stages`.
    case whole(why: String)

    public static let records = Sharding.records(block: 1)

    public var isShardable: Bool {
        if case .whole = self { return false }
        return true
    }

    /// What `leakless stages` says of it.
    public var description: String {
        switch self {
        case .records(let block): return block > 1 ? "sharded by record ranges (whole batches of \(block))" : "sharded by record ranges"
        case .groups(let what, _): return "sharded by record ranges that keep \(what) together"
        case .whole(let why): return "one job: \(why)"
        }
    }
}

/// One shard of a stage run: `index` of `count`.
public struct ShardSpec: Sendable, Equatable, Codable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, index >= 0, index < count else {
            throw RecordError("shard \(index) of \(count) does not exist (shards are numbered 0 to count - 1)")
        }
        self.index = index
        self.count = count
    }

    public var description: String { "shard \(index) of \(count)" }
}

/// Where a sharded run of a stage keeps its shards' files: a folder named by the stage key and
/// the shard count, so a shard's output is content-addressed by both, and a file set per shard
/// whose stats file, written last, marks it complete.
public struct ShardFiles: Sendable {
    public let folder: String
    public let count: Int

    public init(stage: StageFiles, count: Int) {
        self.init(output: stage.output, count: count)
    }

    /// Beside a stage's output file (`<stage>-<key>.jsonl`): `<stage>-<key>.shards-<count>/`.
    public init(output: String, count: Int) {
        let base = output.hasSuffix(".jsonl") ? String(output.dropLast(".jsonl".count)) : output
        folder = "\(base).shards-\(count)"
        self.count = count
    }

    public func output(_ index: Int) -> String { FileSystem.join(folder, "\(index).jsonl") }
    public func rejects(_ index: Int) -> String { FileSystem.join(folder, "\(index).rejects.jsonl") }
    public func stats(_ index: Int) -> String { FileSystem.join(folder, "\(index).stats.json") }
    /// What the shard's model calls cost over all its attempts, booked in the ledger at the merge.
    public func spent(_ index: Int) -> String { FileSystem.join(folder, "\(index).spent.json") }

    public func isComplete(_ index: Int) -> Bool {
        FileSystem.exists(stats(index)) && FileSystem.exists(output(index))
    }

    /// The shards without their completion marker.
    public var missing: [Int] { (0..<count).filter { !isComplete($0) } }
}

/// The record ranges of a stage's input for a shard count: computed the same way by every shard
/// (from the input alone), so together they cover each record exactly once, in order.
public enum ShardRanges {
    /// The records of `source` (the stage's own source, as it would read it) split into `count`
    /// ranges of near-equal size, moved forward to the next whole block or group boundary.
    public static func ranges(of source: RecordSource, sharding: Sharding, count: Int) throws -> [Range<Int>] {
        switch sharding {
        case .whole:
            throw RecordError("this stage runs as one job: its input cannot be split")
        case .records(let block):
            let total = try recordCount(source)
            let blocks = (total + max(1, block) - 1) / max(1, block)
            return (0..<count).map { index in
                let start = min(total, blocks * index / count * max(1, block))
                let end = min(total, blocks * (index + 1) / count * max(1, block))
                return start..<end
            }
        case .groups(_, let key):
            var keys: [String] = []
            while let (_, record) = try source.nextRecord() { keys.append(key(record)) }
            let total = keys.count
            var starts: [Int] = []
            for index in 0..<count {
                var start = total * index / count
                if let previous = starts.last { start = max(start, previous) }
                // Forward to the first record of a group that is not the previous record's.
                while start > 0 && start < total && keys[start] == keys[start - 1] { start += 1 }
                starts.append(start)
            }
            return (0..<count).map { index in starts[index]..<(index + 1 < count ? starts[index + 1] : total) }
        }
    }

    /// The records a source holds (its own count when known, else read through).
    static func recordCount(_ source: RecordSource) throws -> Int {
        if let known = source.expectedCount { return known }
        if let reader = source as? JSONLReader {
            var count = 0
            while try reader.skipRecord() { count += 1 }
            return count
        }
        var count = 0
        while try source.nextRecord() != nil { count += 1 }
        return count
    }
}

/// The records of a source whose index falls in `range`, with their own line numbers: a shard
/// reads the stage's whole input file and takes its part of it.
public final class ShardedSource: RecordSource {
    private let source: RecordSource
    private let range: Range<Int>
    private var index = 0

    public init(_ source: RecordSource, range: Range<Int>) {
        self.source = source
        self.range = range
    }

    public var path: String { source.path }
    public var expectedCount: Int? { range.count }

    public func nextRecord() throws -> (line: Int, record: Record)? {
        while index < range.lowerBound {
            if let reader = source as? JSONLReader {
                guard try reader.skipRecord() else { return nil }
            } else {
                guard try source.nextRecord() != nil else { return nil }
            }
            index += 1
        }
        guard index < range.upperBound, let next = try source.nextRecord() else { return nil }
        index += 1
        return next
    }
}

/// Joins the shards of a stage run into the files a run in one process writes: the outputs and
/// rejects concatenated in shard order (which is input order), the counters summed, the stats
/// written last. Nothing is written unless every shard is complete.
public enum ShardMerge {
    /// How the stage-specific figures of the shards' stats become one: the default sums every
    /// number (nested mappings too) and keeps text that all shards agree on.
    public typealias ExtraMerge = @Sendable (_ shards: [[String: JSONValue]], _ output: String) throws -> [String: JSONValue]

    public static func merge(
        stage: String, shards: ShardFiles, output: String, rejects: String, stats: String?,
        extra: ExtraMerge = { shards, _ in sumFigures(shards) }
    ) throws -> StageStats {
        let missing = shards.missing
        guard missing.isEmpty else {
            throw RecordError("stage '\(stage)': \(missing.count) of \(shards.count) shards are not complete (\(missing.prefix(8).map(String.init).joined(separator: ", "))\(missing.count > 8 ? ", ..." : "")): nothing merged")
        }
        var parts: [StageStats] = []
        for index in 0..<shards.count { parts.append(try StageStats.load(path: shards.stats(index))) }
        try concatenate((0..<shards.count).map(shards.output), into: output)
        do {
            try concatenate((0..<shards.count).map(shards.rejects), into: rejects)
        } catch {
            try? FileSystem.remove(output)
            throw error
        }
        var merged = StageStats(stage: stage)
        for part in parts {
            merged.recordsIn += part.recordsIn
            merged.recordsOut += part.recordsOut
            merged.rejected += part.rejected
            merged.rejectsByReason.merge(part.rejectsByReason, uniquingKeysWith: +)
            merged.seconds += part.seconds
        }
        merged.extra = try extra(parts.map(\.extra), output)
        if let stats { try merged.write(to: stats) }
        return merged
    }

    /// Files joined byte for byte into `path`, written atomically.
    static func concatenate(_ files: [String], into path: String) throws {
        let writer = try AtomicFile(path: path)
        do {
            for file in files {
                let reader = try LineReader(path: file)
                while let line = try reader.nextLine() {
                    try writer.write(Array(line) + [0x0A])
                }
            }
            try writer.commit()
        } catch {
            writer.discard()
            throw error
        }
    }

    /// Numbers summed, mappings merged key by key, anything else kept when every shard has the same.
    public static func sumFigures(_ shards: [[String: JSONValue]]) -> [String: JSONValue] {
        var keys = Set<String>()
        for shard in shards { keys.formUnion(shard.keys) }
        var merged: [String: JSONValue] = [:]
        for key in keys {
            let values = shards.compactMap { $0[key] }
            merged[key] = sum(values)
        }
        return merged
    }

    static func sum(_ values: [JSONValue]) -> JSONValue {
        guard let first = values.first else { return .null }
        if values.allSatisfy({ if case .int = $0 { return true } else { return false } }) {
            return .int(values.reduce(0) { $0 + ($1.intValue ?? 0) })
        }
        if values.allSatisfy({ $0.doubleValue != nil }) {
            let total = values.reduce(0.0) { $0 + ($1.doubleValue ?? 0) }
            return .double((total * 1_000_000).rounded() / 1_000_000)
        }
        if values.allSatisfy({ $0.objectValue != nil }) {
            return .object(sumFigures(values.compactMap(\.objectValue)))
        }
        return values.allSatisfy({ $0 == first }) ? first : .array(values)
    }
}
