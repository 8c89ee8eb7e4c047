import Foundation
import LeaklessCore

/// An audit of one benchmark file, streamed: records are judged in batches as they are read, and
/// each one's line of `audit.jsonl` is written as it is decided, so memory does not grow with the
/// benchmark. Then the report (rates, terms, duplicates) from a second read.
public enum AuditRun {
    /// A judge of a batch: its findings, and the items it could not judge with why.
    public typealias Judge = ([AuditItem]) throws -> ([AuditFinding], [(AuditItem, String)])

    /// - Parameter lexical: the builtin lexical detector when it is the judge: each record is
    ///   then tokenised once and judged on every core.
    public static func run(file: String, format: BenchmarkFormat, options: ImportOptions, folder: String, title: String, judgeName: String,
                           judge: Judge, lexical: LexicalDetector?, batchSize: Int) throws -> AuditReport {
        try FileSystem.createDirectory(folder)
        let writer = try JSONLWriter(path: FileSystem.join(folder, "audit.jsonl"))
        var accumulator = AuditAccumulator(title: title, judge: judgeName, lines: writer)
        let progress = Progress(label: "audit")
        let threads = ProcessInfo.processInfo.activeProcessorCount
        func judged(_ batch: [AuditItem]) throws {
            if let lexical {
                // Each record tokenised once and judged on every core; added in order.
                let chunk = 256, chunks = (batch.count + chunk - 1) / chunk
                let prepared = WorkerPool.map(count: chunks, workers: threads, makeState: {}) { _, index in
                    batch[(index * chunk)..<min(batch.count, (index + 1) * chunk)].map { item in
                        let tokens = Text.tokens(item.query)
                        let result = lexical.judge(item.query, tokens: tokens, context: item.context)
                        let finding = AuditFinding(item: item, verdict: result.verdict, score: result.score, evidence: result.evidence, pairHarmful: nil, reason: nil)
                        return AuditAccumulator.prepare(item, finding: finding, why: nil, judge: judgeName, tokens: tokens)
                    }
                }
                for part in prepared { for record in part { try accumulator.add(record) } }
                return
            }
            let (findings, failed) = try judge(batch)
            var byLocation: [String: AuditFinding] = [:]
            for finding in findings { byLocation[finding.item.location] = finding }
            var why: [String: String] = [:]
            for (item, reason) in failed { why[item.location] = reason }
            for item in batch { try accumulator.add(item, finding: byLocation[item.location], why: why[item.location]) }
        }
        do {
            try BenchmarkImporter.forEachBatch(file, format: format, options: options, batch: batchSize, threads: threads) { items in
                try judged(items)
                progress.tick("\(accumulator.records) records judged")
            }
            progress.finish("\(accumulator.records) records judged")
            return try accumulator.finish { visit in try BenchmarkImporter.forEach(file, format: format, options: options, visit) }
        } catch {
            writer.discard()
            throw error
        }
    }
}
