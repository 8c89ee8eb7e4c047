import LeaklessCore

/// A model stage over records that are not a pipeline stage's files (the audit's items, the
/// evaluation's pairs): run through the concurrent stage runner (so the calls are concurrent,
/// cached and budgeted) into memory.
enum ModelBatch {
    struct Rejected {
        let record: [String: JSONValue]
        /// "reason: detail", as the stage gave them.
        let why: String
    }

    static func run(_ records: [Record], stage: ModelStage, name: String) throws -> (done: [Record], rejected: [Rejected]) {
        let sink = MemorySink()
        let source = ArrayRecordSource(path: name, records: records.enumerated().map { ($0.offset + 1, $0.element) })
        try StageRunner(stageName: name, schema: nil).run(concurrent: stage, source: source, sink: sink)
        let rejected = sink.rejects.map { line in
            Rejected(record: line["record"]?.objectValue ?? [:], why: "\(line["reason"]?.stringValue ?? ""): \(line["detail"]?.stringValue ?? "")")
        }
        return (sink.records, rejected)
    }
}
