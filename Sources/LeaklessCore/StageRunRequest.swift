import Foundation

/// Everything one run of one stage is given, as the driver hands it to the stage executable:
/// where to read and write, the stage's checked parameters, its backends by role, the request
/// cache and what may still be spent. Written as JSON beside the stage's output.
public struct StageRunRequest: Codable, Sendable, Equatable {
    public var stage: String
    /// The previous stage's records (JSONL), or the data file a first stage reads.
    public var input: String
    public var output: String
    public var rejects: String
    /// The completion marker, written last; nil for a run by hand that wants none.
    public var stats: String?
    /// For a stage that writes a folder: the folder.
    public var folder: String?
    /// The stage's templates and schema (`stages/<stage>/`).
    public var templates: String
    public var blobs: String
    /// The request cache of model replies.
    public var cache: String
    /// The stage's parameters by their pipeline.yaml names, every one present.
    public var parameters: [String: JSONValue]
    public var backends: [String: BackendConfig]
    public var budget: Budget
    /// The stats files of the stages run before this one, in order (the export reads them).
    public var upstream: [String]
    /// Where a stage that calls models writes what it spent when it ends, finished or stopped,
    /// so the workdir's ledger counts every paid request.
    public var spentFile: String?
    /// What the stage's definition says it needs besides its input (`StageNeed`), by name.
    public var given: [String: JSONValue]?
    /// For a run split into shards: the workdir's spending ledger. `budget` then holds the
    /// pipeline's limits, and each shard's part is what remains of them when it starts, shared
    /// equally among the shards, so all of them together never spend more.
    public var ledger: String?

    public init(
        stage: String, input: String, output: String, rejects: String, stats: String?, folder: String?, templates: String,
        blobs: String, cache: String, parameters: [String: JSONValue], backends: [String: BackendConfig] = [:],
        budget: Budget = Budget(), upstream: [String] = [], spentFile: String? = nil, given: [String: JSONValue] = [:]
    ) {
        self.given = given.isEmpty ? nil : given
        self.stage = stage
        self.input = input
        self.output = output
        self.rejects = rejects
        self.stats = stats
        self.folder = folder
        self.templates = templates
        self.blobs = blobs
        self.cache = cache
        self.parameters = parameters
        self.backends = backends
        self.budget = budget
        self.upstream = upstream
        self.spentFile = spentFile
    }

    public static func load(path: String) throws -> StageRunRequest {
        let bytes = try FileSystem.read(path)
        do {
            return try JSONDecoder().decode(StageRunRequest.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw LocatedError(path: path, line: nil, message: "not a stage run request: \(error)")
        }
    }

    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(Array(try encoder.encode(self)) + [0x0A], to: path)
    }
}

extension BackendConfig: Codable, Equatable {
    public init(from decoder: Decoder) throws {
        do {
            try self.init(json: try JSONValue(from: decoder))
        } catch let error as RecordError {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: Encoder) throws { try json.encode(to: encoder) }

    public static func == (left: BackendConfig, right: BackendConfig) -> Bool { left.json == right.json }
}
