/// The counters of one stage run (datatrove's total / forwarded / dropped_<reason>), written
/// beside its output as its completion marker.
public struct StageStats: Sendable, Equatable {
    public var stage: String
    public var recordsIn = 0
    public var recordsOut = 0
    public var rejected = 0
    public var rejectsByReason: [String: Int] = [:]
    public var seconds = 0.0
    /// Stage-specific figures (for example how many pool photos were used).
    public var extra: [String: JSONValue] = [:]

    public init(stage: String) { self.stage = stage }

    public var json: JSONValue {
        .object([
            "stage": .string(stage),
            "in": .int(Int64(recordsIn)),
            "out": .int(Int64(recordsOut)),
            "rejected": .int(Int64(rejected)),
            "rejects_by_reason": .object(rejectsByReason.mapValues { .int(Int64($0)) }),
            "seconds": .double(seconds.rounded(places: 3)),
            "extra": .object(extra),
        ])
    }

    public init(json: JSONValue, path: String) throws {
        guard let stage = json["stage"]?.stringValue, let recordsIn = json["in"]?.intValue,
            let recordsOut = json["out"]?.intValue, let rejected = json["rejected"]?.intValue
        else { throw LocatedError(path: path, line: nil, message: "not a stage stats file") }
        self.stage = stage
        self.recordsIn = Int(recordsIn)
        self.recordsOut = Int(recordsOut)
        self.rejected = Int(rejected)
        self.rejectsByReason = (json["rejects_by_reason"]?.objectValue ?? [:]).compactMapValues { $0.intValue.map(Int.init) }
        self.seconds = json["seconds"]?.doubleValue ?? 0
        self.extra = json["extra"]?.objectValue ?? [:]
    }

    public static func load(path: String) throws -> StageStats {
        let bytes = try FileSystem.read(path)
        do {
            return try StageStats(json: try JSONParser.parse(bytes: bytes), path: path)
        } catch let error as JSONParser.SyntaxError {
            throw LocatedError(path: path, line: nil, message: "invalid JSON: \(error)")
        }
    }

    public func write(to path: String) throws {
        try AtomicFile.write(JSONWriter.pretty(json), to: path)
    }
}
