/// What a stage makes of one input record.
public enum StageOutput: Sendable {
    case record(Record)
    /// A dropped record, with a short reason code (counted), a readable detail and, where the
    /// reason rests on other records or measures, the same as fields (`evidence`: the kept pair,
    /// the distance) that readers take instead of parsing the detail.
    case reject(Record, reason: String, detail: String, evidence: JSONValue? = nil)
}

/// A stage over records: one function from an input record to what it emits, in the manner of
/// datatrove's `filter(doc)`. Reading, writing, rejects, counting, timing and progress are the
/// runner's. `finish()` lets a stage that holds state emit what it kept back.
public protocol RecordStage {
    mutating func process(_ record: Record) throws -> [StageOutput]
    mutating func finish() throws -> [StageOutput]
    /// Figures the stage wants in its stats beyond the runner's counters.
    var extraStats: [String: JSONValue] { get }
}

extension RecordStage {
    public mutating func finish() throws -> [StageOutput] { [] }
    public var extraStats: [String: JSONValue] { [:] }
}

/// A stage that must see every record before it can decide about any (dedup: the record kept of
/// a group depends on all the group's members). The runner reads the input twice: `observe` sees
/// each record (keeping only what the decision needs, not the records), `decide` runs once, and
/// `process` then emits as a one-pass stage does, in input order.
public protocol TwoPassStage {
    mutating func observe(_ record: Record) throws
    mutating func decide() throws
    mutating func process(_ record: Record) throws -> [StageOutput]
    var extraStats: [String: JSONValue] { get }
}

/// Anything that yields records with the line they came from.
public protocol RecordSource {
    var path: String { get }
    func nextRecord() throws -> (line: Int, record: Record)?
    /// How many records it holds, when that is known without reading them.
    var expectedCount: Int? { get }
}

extension RecordSource {
    public var expectedCount: Int? { nil }
}

extension JSONLReader: RecordSource {}

/// A fixed list of records, for stages whose input is not JSONL (the taxonomy) and for tests.
public final class ArrayRecordSource: RecordSource {
    public let path: String
    private var items: [(line: Int, record: Record)]
    private var index = 0

    public init(path: String, records: [(line: Int, record: Record)]) {
        self.path = path
        self.items = records
    }

    public var expectedCount: Int? { items.count }

    public func nextRecord() throws -> (line: Int, record: Record)? {
        guard index < items.count else { return nil }
        defer { index += 1 }
        return items[index]
    }
}

/// Where a run's records and rejects go. The runner writes to it and, at the end, commits (or,
/// on an error, discards) it: nothing half-written is ever left.
public protocol RecordSink: AnyObject {
    func write(_ record: Record) throws
    /// A rejected record, as the rejects file holds it (stage, reason, detail, record).
    func reject(_ entry: JSONValue) throws
    /// Makes what was written visible; `stats` (nil when the stage stopped early) is written last,
    /// as the completion marker.
    func commit(stats: StageStats?) throws
    func discard()
}

/// A stage's files in the store: output and rejects written atomically, then the stats.
public final class FileSink: RecordSink {
    private let outputWriter: JSONLWriter
    private let rejectsWriter: JSONLWriter
    private let stats: String?

    public init(output: String, rejects: String, stats: String?) throws {
        outputWriter = try JSONLWriter(path: output)
        rejectsWriter = try JSONLWriter(path: rejects)
        self.stats = stats
    }

    public func write(_ record: Record) throws { try outputWriter.write(record) }
    public func reject(_ entry: JSONValue) throws { try rejectsWriter.write(json: entry) }

    public func commit(stats counters: StageStats?) throws {
        try rejectsWriter.commit()
        try outputWriter.commit()
        if let stats, let counters { try counters.write(to: stats) }
    }

    public func discard() {
        outputWriter.discard()
        rejectsWriter.discard()
    }
}

/// Records kept in memory (the audit judge, the evaluation, tests): no files at all.
public final class MemorySink: RecordSink {
    public private(set) var records: [Record] = []
    public private(set) var rejects: [JSONValue] = []
    public private(set) var stats: StageStats?

    public init() {}

    public func write(_ record: Record) throws { records.append(record) }
    public func reject(_ entry: JSONValue) throws { rejects.append(entry) }
    public func commit(stats: StageStats?) throws { self.stats = stats }
    public func discard() {
        records = []
        rejects = []
    }
}

/// Streams a source through a stage into a sink. The concurrency is the stage's: one record at
/// a time (`RecordStage`), two passes (`TwoPassStage`), or records in flight on worker threads
/// (`ConcurrentRecordStage`). Counting, rejects, the schema check, progress and the commit are
/// the runner's alone.
public struct StageRunner {
    public let stageName: String
    public let schema: RecordSchema?
    /// Progress lines on stderr (off for in-memory batches inside another command).
    public var showsProgress = true
    /// The records the input holds, for done/total and an ETA (the stage's source knows, or
    /// the caller counted the lines).
    public var expectedRecords: Int?

    public init(stageName: String, schema: RecordSchema?) {
        self.stageName = stageName
        self.schema = schema
    }

    @discardableResult
    public func run<Stage: RecordStage>(_ stage: inout Stage, source: RecordSource, sink: RecordSink) throws -> StageStats {
        try runLoop(source: source, sink: sink, extraStats: { stage.extraStats }) { emit in
            while let (line, record) = try source.nextRecord() {
                try emit(try locating(source.path, line) { try stage.process(record) }, line, true)
            }
            try emit(try stage.finish(), nil, false)
            return nil
        }
    }

    /// Runs a two-pass stage; `source` is called once per pass and must give the same records.
    @discardableResult
    public func run<Stage: TwoPassStage>(twoPass stage: inout Stage, source: () throws -> RecordSource, sink: RecordSink) throws -> StageStats {
        let first = try source()
        while let (line, record) = try first.nextRecord() {
            try locating(first.path, line) { try stage.observe(record) }
        }
        try locating(first.path, nil) { try stage.decide() }
        let second = try source()
        return try runLoop(source: second, sink: sink, extraStats: { stage.extraStats }) { emit in
            while let (line, record) = try second.nextRecord() {
                try emit(try locating(second.path, line) { try stage.process(record) }, line, true)
            }
            return nil
        }
    }

    /// A stage's record error, given the input file and line it came from.
    private func locating<T>(_ path: String, _ line: Int?, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as RecordError {
            throw LocatedError(path: path, line: line, message: error.description)
        }
    }

    /// What every run shares: the counters, the schema check, progress, and the commit (or
    /// discard) of the sink. `body` feeds outputs to `emit(outputs, line, read)`, where `read`
    /// counts one input record; it returns a StageStopped when the stage stopped early, in which
    /// case what finished is committed but no stats are written.
    func runLoop(
        source: RecordSource, sink: RecordSink, extraStats: () -> [String: JSONValue], detail: @escaping () -> String = { "" },
        body: (_ emit: ([StageOutput], Int?, Bool) throws -> Void) throws -> StageStopped?
    ) throws -> StageStats {
        let total = expectedRecords ?? source.expectedCount
        let progress = showsProgress ? Progress(label: stageName) : nil
        var counters = StageStats(stage: stageName)
        let stopped: StageStopped?
        do {
            func emit(_ outputs: [StageOutput], line: Int?, read: Bool) throws {
                if read { counters.recordsIn += 1 }
                for item in outputs {
                    switch item {
                    case .record(let record):
                        if let schema, let problem = schema.violation(in: record.json) {
                            throw LocatedError(
                                path: source.path, line: line,
                                message: "stage '\(stageName)' made a record that breaks its schema \(problem)")
                        }
                        try sink.write(record)
                        counters.recordsOut += 1
                    case .reject(let record, let reason, let detail, let evidence):
                        var entry: [String: JSONValue] = [
                            "stage": .string(stageName), "reason": .string(reason), "detail": .string(detail), "record": record.json,
                        ]
                        if let evidence { entry["evidence"] = evidence }
                        try sink.reject(.object(entry))
                        counters.rejected += 1
                        counters.rejectsByReason[reason, default: 0] += 1
                    }
                }
                if read, let progress, progress.isDue {
                    let extra = detail()
                    progress.tick("\(progress.rate(done: counters.recordsIn, total: total)) read, \(counters.recordsOut) written, \(counters.rejected) rejected"
                                  + (extra.isEmpty ? "" : "; " + extra))
                }
            }
            stopped = try body { outputs, line, read in try emit(outputs, line: line, read: read) }
            counters.extra = extraStats()
            counters.seconds = progress?.elapsed ?? 0
            try sink.commit(stats: stopped == nil ? counters : nil)
        } catch {
            sink.discard()
            throw error
        }
        let summary = "\(counters.recordsIn) read, \(counters.recordsOut) written, \(counters.rejected) rejected"
        if let stopped {
            progress?.finish("\(summary); \(stopped)")
            throw stopped
        }
        progress?.finish("\(summary) in \(formatSeconds(counters.seconds))")
        return counters
    }
}
