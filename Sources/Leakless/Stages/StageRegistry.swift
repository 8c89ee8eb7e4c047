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
}
