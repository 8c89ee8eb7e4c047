import LeaklessCore

/// A model stage over records that are not a pipeline stage's files (the audit's items, the
/// evaluation's pairs): they are written to `work`, run through the concurrent stage runner
/// (so the calls are concurrent, cached, budgeted and resumable), and read back.
enum ModelBatch {
    struct Rejected {
        let record: [String: JSONValue]
        /// "reason: detail", as the stage gave them.
        let why: String
    }

    static func run(_ records: [Record], stage: ModelStage, name: String, work: String) throws -> (done: [Record], rejected: [Rejected]) {
        try FileSystem.createDirectory(work)
        let input = FileSystem.join(work, "input.jsonl")
        try AtomicFile.write(Array(records.map { JSONWriter.canonical($0.json) + "\n" }.joined().utf8), to: input)
        let output = FileSystem.join(work, "output.jsonl"), rejects = FileSystem.join(work, "rejects.jsonl")
        let runner = StageRunner(stageName: name, output: output, rejects: rejects, stats: nil, schema: nil)
        try runner.run(concurrent: stage, source: try JSONLReader(path: input))
        var done: [Record] = []
        let finished = try JSONLReader(path: output)
        while let (_, record) = try finished.nextRecord() { done.append(record) }
        var rejected: [Rejected] = []
        let reader = try JSONLReader(path: rejects)
        while let (_, line) = try reader.nextRecord() {
            rejected.append(Rejected(record: line["record"]?.objectValue ?? [:], why: "\(line.string("reason") ?? ""): \(line.string("detail") ?? "")"))
        }
        return (done, rejected)
    }
}
