import LeaklessCore

/// export: the benchmark folder, in VLSBench's layout or as a Hugging Face imagefolder, with
/// provenance and a dataset card.
public enum ExportStage: PipelineStage {
    public static let definition = StageDefinition(
        name: "export", version: 3, summary: "the benchmark in VLSBench's layout: data.json and imgs/",
        input: .records(["pair"]), output: .folder,
        sharding: .whole(why: "it writes one benchmark folder, each image once"),
        needs: [
            // Human review decisions change what is exported, when the review policy reads them.
            .workdirLog(name: reviewDecisions, path: ReviewStore.relativePath,
                        applies: { ($0["review"]?["require"]?.stringValue ?? "none") != "none" }),
            // An edited query is judged again by the detect stage's own detector.
            .stageParameters(name: detectSettings, stage: editJudgeStage),
        ],
        parameters: StageParameter.declared(in: Parameters()))

    /// The names the export's needs are given under.
    public static let reviewDecisions = "review_decisions"
    public static let detectSettings = "detect"
    /// The stage whose `editJudge` judges an edited query.
    public static let editJudgeStage = "detect"

    /// The judge of edited queries, from that stage's parameters as pipeline.yaml gives them.
    static func editJudge(_ values: [String: JSONValue], origin: String) throws -> EditJudge? {
        try StageRegistry.stage(named: editJudgeStage)?.editJudge(values: values, origin: origin)
    }

    public struct Parameters: Decodable, Sendable {
        @Parameter("format", .choice(ExportFormat.allCases.map(\.rawValue)), default: "vlsbench", "the layout: VLSBench's data.json, or a Hugging Face imagefolder (metadata.jsonl)")
        public var format: ExportFormat
        @Parameter(ReviewPolicy.parameter)
        public var review: ReviewPolicy
    }

    public static func provenance(of pair: Record) -> JSONValue? { pair["review"] }

    public static func implementation(_ parameters: Parameters, context: StageContext) throws -> StageImplementation {
        guard let folder = context.folder else { throw RecordError("stage 'export' needs an output folder") }
        return .sequential(try ExportWriterStage(context: context, folder: folder, parameters: parameters))
    }
}
