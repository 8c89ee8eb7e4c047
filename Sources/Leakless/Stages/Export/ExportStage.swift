import LeaklessCore

/// export: the benchmark folder, in VLSBench's layout or as a Hugging Face imagefolder, with
/// provenance and a dataset card.
public enum ExportStage: PipelineStage {
    public static let definition = StageDefinition(
        name: "export", version: 3, summary: "the benchmark in VLSBench's layout: data.json and imgs/",
        input: .records(["pair"]), output: .folder, readsReview: true,
        parameters: [
            StageParameter("format", .choice(ExportFormat.allCases.map(\.rawValue)), default: "vlsbench", "the layout: VLSBench's data.json, or a Hugging Face imagefolder (metadata.jsonl)"),
            ReviewPolicy.parameter,
        ])

    public struct Parameters: Decodable, Sendable {
        public var format: ExportFormat
        public var review: ReviewPolicy
    }

    public static func provenance(of pair: Record) -> JSONValue? { pair["review"] }

    public static func implementation(_ parameters: Parameters, context: StageContext) throws -> StageImplementation {
        guard let folder = context.folder else { throw RecordError("stage 'export' needs an output folder") }
        return .sequential(try ExportWriterStage(context: context, folder: folder, parameters: parameters))
    }
}
