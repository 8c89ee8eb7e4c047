import LeaklessCore

/// How a stage processes its records, which decides how the runner drives it.
public enum StageImplementation {
    /// One record at a time, in order (the builtin stages).
    case sequential(any RecordStage)
    /// Every record seen before any is decided (dedup).
    case twoPass(any TwoPassStage)
    /// Records in flight on worker threads, waiting on model endpoints.
    case concurrent(ModelStage)
}

/// A stage of the pipeline, whole: what it reads and writes, its typed parameters, how it is
/// implemented for the backends it is given, and what it adds to a pair's provenance. Each lives
/// in its own folder under `Stages/`, and `StageRegistry` lists them in order; nothing else in
/// the project needs to know a stage by name.
public protocol PipelineStage: Sendable {
    /// The stage's parameters, read from pipeline.yaml's snake_case keys after they were checked
    /// against `definition.parameters` (types, ranges, defaults).
    associatedtype Parameters: Decodable & Sendable

    static var definition: StageDefinition { get }

    /// Checks across parameters that the types alone cannot express; the message is reported
    /// at the stage's line of pipeline.yaml before any stage runs.
    static func validate(_ parameters: Parameters) throws

    /// The implementation for one run, chosen by the backends in `context`.
    static func implementation(_ parameters: Parameters, context: StageContext) throws -> StageImplementation

    /// The records the stage reads; the previous stage's JSONL unless the stage reads a data file.
    static func source(_ parameters: Parameters, input: String) throws -> RecordSource

    /// What the stage recorded on a finished pair, for `provenance.jsonl` (nil: nothing).
    static func provenance(of pair: Record) -> JSONValue?

    /// How the stage judges a query a reviewer wrote after it ran (nil: it judges none).
    static func editJudge(_ parameters: Parameters) -> EditJudge?
}

/// The judge of an edited query, made from a stage's parameters: the detector it was configured
/// with (a record stage given the edited record), and that detector's settings.
public struct EditJudge: Sendable {
    public let settings: DetectorSettings
    public let make: @Sendable () throws -> any RecordStage
}

extension PipelineStage {
    public static func validate(_ parameters: Parameters) throws {}

    public static func source(_ parameters: Parameters, input: String) throws -> RecordSource {
        try JSONLReader(path: input)
    }

    public static func provenance(of pair: Record) -> JSONValue? { nil }

    public static func editJudge(_ parameters: Parameters) -> EditJudge? { nil }

    /// The edit judge of parameters as pipeline.yaml gives them (checked; errors name `origin`).
    public static func editJudge(values: [String: JSONValue], origin: String) throws -> EditJudge? {
        editJudge(try checkedParameters(values, origin: origin))
    }

    /// The typed parameters of checked values (defaults fill in what is missing).
    public static func parameters(_ values: [String: JSONValue]) throws -> Parameters {
        try JSONValue.object(definition.defaults.merging(values) { $1 }).decode(Parameters.self)
    }

    /// The network backend of `role`, which the stage cannot do without.
    static func requireNetwork(_ role: String, _ context: StageContext) throws -> BackendConfig {
        guard let backend = context.network(role) else {
            throw RecordError("stage '\(definition.name)' needs a network backend for '\(role)'")
        }
        return backend
    }

    /// Runs the stage on `request`'s files, or into `sink` when one is given.
    @discardableResult
    public static func run(_ request: StageRunRequest, sink given: RecordSink? = nil) throws -> StageStats {
        guard let ledger = request.ledger else { return try run(request, sink: given, range: nil) }
        // Run as one job of a Slurm run: the budget left is read from the ledger now, and what
        // this process spends is booked there when it ends.
        var request = request
        if request.budget.isLimited {
            let remaining = request.budget.remaining(after: try SpendingLedger.load(ledger))
            guard let left = remaining.share(0, of: 1, lessSpent: Budget()) else {
                return try run(request, sink: given, range: nil, budgetSpent: "the budget is spent (ledger \(ledger))")
            }
            request.budget = left
        }
        defer { if let file = request.spentFile { _ = try? SpendingLedger.book(file, into: ledger) } }
        return try run(request, sink: given, range: nil)
    }

    /// Runs the stage on the records of its input in `range` (all of them when nil).
    /// `budgetSpent`: why a model stage must not send a request at all.
    static func run(
        _ request: StageRunRequest, sink given: RecordSink?, range: Range<Int>?, spentBefore: Budget = Budget(), budgetSpent: String? = nil
    ) throws -> StageStats {
        let parameters = try checkedParameters(request.parameters, origin: request.stage)
        let context = StageContext(request: request)
        let schemaPath = FileSystem.join(request.templates, "schema.json")
        let schema = FileSystem.exists(schemaPath) ? try RecordSchema.load(path: schemaPath) : nil
        var runner = StageRunner(stageName: definition.name, schema: schema)
        // A JSONL input's lines are its records: counted once, for done/total and an ETA.
        if let range {
            runner.expectedRecords = range.count
        } else if FileSystem.exists(request.input), request.input.hasSuffix(".jsonl") {
            runner.expectedRecords = try FileSystem.countLines(request.input)
        }
        func records() throws -> RecordSource {
            let all = try source(parameters, input: request.input)
            return range.map { ShardedSource(all, range: $0) } ?? all
        }
        let implementation = try implementation(parameters, context: context)
        let sink = try given ?? FileSink(output: request.output, rejects: request.rejects, stats: request.stats)
        switch implementation {
        case .sequential(var stage):
            return try runner.run(&stage, source: try records(), sink: sink)
        case .twoPass(var stage):
            return try runner.run(twoPass: &stage, source: { try records() }, sink: sink)
        case .concurrent(let stage):
            if let budgetSpent { throw StageStopped(reason: budgetSpent, finished: 0) }
            Interruption.install()
            // What was paid for is recorded however the run ends (a shard's over all its attempts).
            defer {
                if let spentFile = request.spentFile, let spent = stage.extraStats["model"]?["spent"] {
                    try? AtomicFile.write(JSONWriter.canonical(spentBefore.adding(Budget(json: spent)).json), to: spentFile)
                }
            }
            return try runner.run(concurrent: stage, source: try records(), sink: sink)
        }
    }

    /// Runs one shard of the stage: its part of the input (`ShardRanges`), into the shard's files
    /// beside the stage's output (`ShardFiles`), with its part of the budget.
    @discardableResult
    public static func runShard(_ request: StageRunRequest, shard: ShardSpec) throws -> StageStats {
        guard definition.sharding.isShardable else {
            throw RecordError("stage '\(definition.name)' cannot be split into shards (\(definition.sharding.description))")
        }
        let parameters = try checkedParameters(request.parameters, origin: request.stage)
        let ranges = try ShardRanges.ranges(of: try source(parameters, input: request.input), sharding: definition.sharding, count: shard.count)
        let files = ShardFiles(output: request.output, count: shard.count)
        var part = request
        part.output = files.output(shard.index)
        part.rejects = files.rejects(shard.index)
        part.stats = files.stats(shard.index)
        part.spentFile = request.spentFile == nil ? nil : files.spent(shard.index)
        part.ledger = nil
        let spentBefore = part.spentFile.flatMap { try? SpendingLedger.load($0) } ?? Budget()
        if let ledger = request.ledger, request.budget.isLimited {
            let remaining = request.budget.remaining(after: try SpendingLedger.load(ledger))
            guard let share = remaining.share(shard.index, of: shard.count, lessSpent: spentBefore) else {
                return try run(part, sink: nil, range: ranges[shard.index], spentBefore: spentBefore,
                               budgetSpent: "\(shard)'s part of the budget is spent (ledger \(ledger))")
            }
            part.budget = share
        }
        return try run(part, sink: nil, range: ranges[shard.index], spentBefore: spentBefore)
    }

    /// Joins the complete shards of a sharded run into the stage's own output, rejects and stats
    /// (the same bytes a run in one process writes), and books what the shards spent.
    @discardableResult
    public static func mergeShards(_ request: StageRunRequest, count: Int) throws -> StageStats {
        let files = ShardFiles(output: request.output, count: count)
        // Any earlier stats must not mark a half-merged run complete.
        if let stats = request.stats { try FileSystem.remove(stats) }
        let merged = try ShardMerge.merge(
            stage: definition.name, shards: files, output: request.output, rejects: request.rejects, stats: nil,
            extra: definition.mergeExtra)
        if let ledger = request.ledger {
            for index in 0..<count { try SpendingLedger.book(files.spent(index), into: ledger) }
        }
        if let stats = request.stats { try merged.write(to: stats) }
        return merged
    }

    /// The stage's model implementation for `request` and the records it would read, for
    /// planning: nothing is sent, so API keys need not be set. nil when the stage calls no model.
    public static func planned(_ request: StageRunRequest) throws -> (stage: ModelStage, source: RecordSource)? {
        let parameters = try checkedParameters(request.parameters, origin: request.stage)
        var context = StageContext(request: request)
        context.planning = true
        guard case .concurrent(let stage) = try implementation(parameters, context: context) else { return nil }
        return (stage, try source(parameters, input: request.input))
    }

    /// Values checked against the definition (unknown names, wrong types, out of range), then
    /// read as `Parameters`; errors name `origin`.
    public static func checkedParameters(_ values: [String: JSONValue], origin: String) throws -> Parameters {
        var checked: [String: JSONValue] = [:]
        for (name, value) in values {
            guard let parameter = definition.parameter(name) else {
                throw LocatedError(path: origin, line: nil, message: "unknown parameter '\(name)' for stage '\(definition.name)' (expected one of: \(definition.parameters.map(\.name).joined(separator: ", ")))")
            }
            switch parameter.type.check(value) {
            case .success(let accepted): checked[name] = accepted
            case .failure(let mismatch): throw LocatedError(path: origin, line: nil, message: "'\(name)' \(mismatch)")
            }
        }
        do {
            let parameters = try self.parameters(checked)
            try validate(parameters)
            return parameters
        } catch let error as RecordError {
            throw LocatedError(path: origin, line: nil, message: "stage '\(definition.name)': \(error.description)")
        }
    }
}
