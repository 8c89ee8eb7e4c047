/// What a stage makes of one input record.
public enum StageOutput: Sendable {
    case record(Record)
    /// A dropped record, with a short reason code (counted) and a readable detail.
    case reject(Record, reason: String, detail: String)
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

    public func nextRecord() throws -> (line: Int, record: Record)? {
        guard index < items.count else { return nil }
        defer { index += 1 }
        return items[index]
    }
}

/// Streams a source through a stage into an output file and a rejects file, both written
/// atomically; on any error neither appears. Stats are written last, as the completion marker.
public struct StageRunner {
    public let stageName: String
    public let output: String
    public let rejects: String
    public let stats: String?
    public let schema: RecordSchema?

    public init(stageName: String, output: String, rejects: String, stats: String?, schema: RecordSchema?) {
        self.stageName = stageName
        self.output = output
        self.rejects = rejects
        self.stats = stats
        self.schema = schema
    }

    @discardableResult
    public func run<Stage: RecordStage>(_ stage: inout Stage, source: RecordSource) throws -> StageStats {
        try runLoop(source: source, extraStats: { stage.extraStats }) { emit in
            while let (line, record) = try source.nextRecord() {
                try emit(try locating(source.path, line) { try stage.process(record) }, line, true)
            }
            try emit(try stage.finish(), nil, false)
            return nil
        }
    }

    /// Runs a two-pass stage; `source` is called once per pass and must give the same records.
    @discardableResult
    public func run<Stage: TwoPassStage>(twoPass stage: inout Stage, source: () throws -> RecordSource) throws -> StageStats {
        let first = try source()
        while let (line, record) = try first.nextRecord() {
            try locating(first.path, line) { try stage.observe(record) }
        }
        try locating(first.path, nil) { try stage.decide() }
        let second = try source()
        return try runLoop(source: second, extraStats: { stage.extraStats }) { emit in
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

    /// What every run shares: the writers, the counters, the schema check, progress, and the
    /// commit (or discard) at the end. `body` feeds outputs to `emit(outputs, line, read)`,
    /// where `read` counts one input record; it returns a StageStopped when the stage stopped
    /// early, in which case what finished is committed but no stats are written.
    func runLoop(
        source: RecordSource, extraStats: () -> [String: JSONValue],
        body: (_ emit: ([StageOutput], Int?, Bool) throws -> Void) throws -> StageStopped?
    ) throws -> StageStats {
        let progress = Progress(label: stageName)
        var counters = StageStats(stage: stageName)
        let outputWriter = try JSONLWriter(path: output)
        let rejectsWriter = try JSONLWriter(path: rejects)
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
                        try outputWriter.write(record)
                        counters.recordsOut += 1
                    case .reject(let record, let reason, let detail):
                        try rejectsWriter.write(json: .object([
                            "stage": .string(stageName),
                            "reason": .string(reason),
                            "detail": .string(detail),
                            "record": record.json,
                        ]))
                        counters.rejected += 1
                        counters.rejectsByReason[reason, default: 0] += 1
                    }
                }
                if read {
                    progress.tick("\(counters.recordsIn) read, \(counters.recordsOut) written, \(counters.rejected) rejected")
                }
            }
            stopped = try body { outputs, line, read in try emit(outputs, line: line, read: read) }
            counters.extra = extraStats()
            try rejectsWriter.commit()
            try outputWriter.commit()
        } catch {
            outputWriter.discard()
            rejectsWriter.discard()
            throw error
        }
        counters.seconds = progress.elapsed
        if let stopped {
            progress.finish("\(counters.recordsIn) read, \(counters.recordsOut) written, \(counters.rejected) rejected; \(stopped)")
            throw stopped
        }
        if let stats { try counters.write(to: stats) }
        progress.finish("\(counters.recordsIn) read, \(counters.recordsOut) written, \(counters.rejected) rejected in \(formatSeconds(counters.seconds))")
        return counters
    }
}

public func formatSeconds(_ seconds: Double) -> String {
    seconds < 10 ? String(format1: seconds, digits: 2) + " s" : String(format1: seconds, digits: 1) + " s"
}

extension String {
    /// A fixed-point rendering without Foundation's format strings.
    public init(format1 value: Double, digits: Int) {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = Int64(scaled / scale)
        var fraction = String(Int64(scaled) - whole * Int64(scale))
        while fraction.count < digits { fraction = "0" + fraction }
        self = (value < 0 && scaled != 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + fraction : "")
    }
}
