import LeaklessCore

/// The stages of the pipeline, in their natural order. Adding a stage: its folder under
/// `Stages/`, one line here, and its executable in Package.swift.
public enum StageRegistry {
    public static let all: [any PipelineStage.Type] = [
        ExtractStage.self,
        RewriteStage.self,
        DetectStage.self,
        ImageStage.self,
        CategoriseStage.self,
        FilterStage.self,
        DedupStage.self,
        SelectStage.self,
        ExportStage.self,
    ]

    public static var definitions: [StageDefinition] { all.map { $0.definition } }

    public static func stage(named name: String) -> (any PipelineStage.Type)? {
        all.first { $0.definition.name == name }
    }

    public static func definition(named name: String) -> StageDefinition? { stage(named: name)?.definition }

    /// Runs the stage a request names.
    @discardableResult
    public static func run(_ request: StageRunRequest, sink: RecordSink? = nil) throws -> StageStats {
        guard let stage = stage(named: request.stage) else {
            throw RecordError("unknown stage '\(request.stage)' (expected one of: \(definitions.map(\.name).joined(separator: ", ")))")
        }
        return try stage.run(request, sink: sink)
    }

    /// Runs one shard of the stage a request names (a Slurm array task).
    @discardableResult
    public static func runShard(_ request: StageRunRequest, shard: ShardSpec) throws -> StageStats {
        try named(request).runShard(request, shard: shard)
    }

    /// Joins the `count` complete shards of the stage a request names into its output.
    @discardableResult
    public static func mergeShards(_ request: StageRunRequest, count: Int) throws -> StageStats {
        try named(request).mergeShards(request, count: count)
    }

    private static func named(_ request: StageRunRequest) throws -> any PipelineStage.Type {
        guard let stage = stage(named: request.stage) else {
            throw RecordError("unknown stage '\(request.stage)' (expected one of: \(definitions.map(\.name).joined(separator: ", ")))")
        }
        return stage
    }
}
