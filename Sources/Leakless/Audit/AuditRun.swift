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
        do {
            try judgeAll(file: file, format: format, options: options, judgeName: judgeName, judge: judge, lexical: lexical,
                         batchSize: batchSize, range: nil, into: &accumulator)
            return try accumulator.finish { visit in try BenchmarkImporter.forEach(file, format: format, options: options, visit) }
        } catch {
            writer.discard()
            throw error
        }
    }

    /// Where shard `index` of `count` of an audit keeps its part: `<folder>/shards-<count>/<index>.jsonl`,
    /// its lines as `audit.jsonl` would hold them (numbered within the shard), `<index>.hashes`, its
    /// records' hashes, and `<index>.done`, its aggregates, written last.
    public static func shardPart(folder: String, index: Int, count: Int) -> (lines: String, hashes: String, done: String) {
        let base = FileSystem.join(folder, "shards-\(count)", "\(index)")
        return (base + ".jsonl", base + ".hashes", base + ".done")
    }

    /// Is shard `index` of `count` judged, by this judge? (A shard another judge made is judged again.)
    public static func isShardDone(folder: String, index: Int, count: Int, judgeName: String) -> Bool {
        guard let bytes = try? FileSystem.read(shardPart(folder: folder, index: index, count: count).done),
              let summary = try? JSONParser.parse(bytes: bytes) else { return false }
        return summary["judge"]?.stringValue == judgeName
    }

    /// Judges one shard's part of the benchmark (its records by position, as `ShardRanges` splits
    /// records) into its part file; the merge makes the audit.
    public static func runShard(file: String, format: BenchmarkFormat, options: ImportOptions, folder: String, judgeName: String,
                                judge: Judge, lexical: LexicalDetector?, batchSize: Int, shard: ShardSpec) throws {
        let total = try BenchmarkImporter.count(file, format: format, options: options)
        let range = (total * shard.index / shard.count)..<(total * (shard.index + 1) / shard.count)
        let part = shardPart(folder: folder, index: shard.index, count: shard.count)
        try FileSystem.remove(part.done)
        let writer = try JSONLWriter(path: part.lines)
        var accumulator = AuditAccumulator(title: "", judge: judgeName, lines: writer)
        do {
            try judgeAll(file: file, format: format, options: options, judgeName: judgeName, judge: judge, lexical: lexical,
                         batchSize: batchSize, range: range, into: &accumulator)
            try writer.commit()
        } catch {
            writer.discard()
            throw error
        }
        let state = accumulator.shardState(range: range, total: total)
        try AtomicFile.write(state.hashes, to: part.hashes)
        try AtomicFile.write(JSONWriter.canonical(state.summary) + "\n", to: part.done)
    }

    /// The audit of a benchmark whose shards are all judged: their lines renumbered into audit.jsonl
    /// and their aggregates and hashes joined, so audit.jsonl and the report are those of a run in
    /// one process; the benchmark is read again only up to the last record the report shows.
    public static func merge(file: String, format: BenchmarkFormat, options: ImportOptions, folder: String, title: String, judgeName: String,
                             shards count: Int) throws -> AuditReport {
        let parts = (0..<count).map { shardPart(folder: folder, index: $0, count: count) }
        if let missing = parts.firstIndex(where: { !FileSystem.exists($0.done) }) {
            throw RecordError("the audit's shard \(missing) of \(count) is not complete (no \(parts[missing].done)): nothing merged")
        }
        let writer = try JSONLWriter(path: FileSystem.join(folder, "audit.jsonl"))
        var accumulator = AuditAccumulator(title: title, judge: judgeName, lines: writer)
        do {
            var covered = 0, total: Int64?
            for part in parts {
                let summary = try JSONParser.parse(String(decoding: FileSystem.read(part.done), as: UTF8.self))
                let range = summary["range"]?.arrayValue?.compactMap(\.intValue) ?? []
                // The shards' ranges must tile one count of the benchmark: a shard judged against
                // another version of the file is not merged.
                guard range.count == 2, range[0] == Int64(covered), total == nil || total == summary["total"]?.intValue else {
                    throw RecordError("\(part.done): the shard's records \(range) do not follow the earlier shards' (up to \(covered)) of one count of \(file): judge the shards again")
                }
                guard summary["judge"]?.stringValue == judgeName else {
                    throw RecordError("\(part.done): the shard was judged by \(summary["judge"]?.stringValue ?? "another judge"), not \(judgeName): judge the shards again")
                }
                total = summary["total"]?.intValue
                covered = Int(range[1])
                try accumulator.absorb(summary: summary, hashes: FileSystem.read(part.hashes), lines: LineReader(path: part.lines), part: part.done)
            }
            guard let total, covered == Int(total) else { throw RecordError("the audit's shards cover \(covered) records of \(file), not all of them") }
            return try accumulator.finish { visit in try BenchmarkImporter.forEach(file, format: format, options: options, visit) }
        } catch {
            writer.discard()
            throw error
        }
    }

    /// Judges the records (those in `range`, or all) in batches, adding each to the accumulator in order.
    static func judgeAll(file: String, format: BenchmarkFormat, options: ImportOptions, judgeName: String, judge: Judge, lexical: LexicalDetector?,
                         batchSize: Int, range: Range<Int>?, into accumulator: inout AuditAccumulator) throws {
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
        try BenchmarkImporter.forEachBatch(file, format: format, options: options, batch: batchSize, threads: threads, range: range) { items in
            try judged(items)
            progress.tick("\(accumulator.records) records judged")
        }
        progress.finish("\(accumulator.records) records judged")
    }
}

extension AuditFinding {
    /// A finding read back from its line of audit.jsonl (nil, with the reason, for a record not
    /// judged): the fields the line holds are all the report uses.
    static func fromLine(_ line: JSONValue, item: AuditItem) throws -> (AuditFinding?, String?) {
        guard let verdictName = line["verdict"]?.stringValue else { throw RecordError("an audit line without a verdict") }
        guard let verdict = LexicalVerdict.Verdict(rawValue: verdictName) else {
            return (nil, line["reason"]?.stringValue ?? "no verdict")
        }
        let evidence = (line["evidence"]?.arrayValue ?? []).map { entry in
            var evidence = LexicalVerdict.Evidence(span: entry["span"]?.stringValue ?? "", term: entry["term"]?.stringValue ?? "",
                                                   source: entry["source"]?.stringValue ?? "")
            evidence.offset = Int(entry["offset"]?.intValue ?? 0)
            evidence.length = Int(entry["length"]?.intValue ?? 0)
            return evidence
        }
        return (AuditFinding(item: item, verdict: verdict, score: line["score"]?.doubleValue ?? 0, evidence: evidence,
                             pairHarmful: line["pair_harmful"]?.boolValue, reason: line["reason"]?.stringValue), nil)
    }
}
