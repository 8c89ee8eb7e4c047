import LeaklessCore

/// What a shard of a sharded audit hands the merge, so the merge neither reads the benchmark
/// again nor prepares any record: its lines (numbered from 1 within the shard), its aggregates
/// (the `.done` marker's JSON, written last) and its records' hashes (a binary file: per record
/// the normalised query's hash and SimHash, then the distinct raw queries' hashes).
extension AuditAccumulator {
    /// The aggregates and hashes of a shard that judged the records `range` of `total`.
    func shardState(range: Range<Int>, total: Int) -> (summary: JSONValue, hashes: [UInt8]) {
        var hashes: [UInt8] = []
        hashes.reserveCapacity((normalised.count * 2 + distinct.count) * 8)
        func append(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { hashes.append(contentsOf: $0) } }
        for index in normalised.indices {
            append(normalised[index])
            append(simHashes[index])
        }
        for raw in distinct.sorted() { append(raw) }
        let summary: JSONValue = .object([
            "range": .array([.int(Int64(range.lowerBound)), .int(Int64(range.upperBound))]), "total": .int(Int64(total)),
            "judge": .string(judge), "records": .int(Int64(records)), "judged": .int(Int64(judged)), "distinct": .int(Int64(distinct.count)),
            "unjudged": .array(unjudged.map { .array([.string($0.location), .string($0.why)]) }),
            "overall": overall.state,
            "per_category": .object(perCategory.mapValues(\.state)),
            "terms": .array(terms.values.sorted { ($0.term, $0.source) < ($1.term, $1.source) }
                .map { .array([.string($0.term), .string($0.source), .int(Int64($0.count))]) }),
            "examples": .object(Dictionary(uniqueKeysWithValues: examplePositions.map { ($0.key.rawValue, .array($0.value.map { .int(Int64($0)) })) })),
            "empty": .int(Int64(emptyCount)), "empty_locations": JSONValue(emptyLocations),
        ])
        return (summary, hashes)
    }

    /// Adds the next shard: its lines go to `audit.jsonl` numbered on from the records before it,
    /// its aggregates and hashes join these. `part` names the shard's files in errors.
    mutating func absorb(summary: JSONValue, hashes: [UInt8], lines: LineReader, part: String) throws {
        func int(_ key: String) throws -> Int {
            guard let value = summary[key]?.intValue, value >= 0 else { throw RecordError("\(part): the shard's marker has no '\(key)'") }
            return Int(value)
        }
        let count = try int("records"), distinctCount = try int("distinct")
        guard hashes.count == (count * 2 + distinctCount) * 8 else {
            throw RecordError("\(part): the shard's hashes hold \(hashes.count) bytes, not the \((count * 2 + distinctCount) * 8) of \(count) records")
        }
        var wanted: [Int: LexicalVerdict.Verdict] = [:]
        for (name, positions) in summary["examples"]?.objectValue ?? [:] {
            guard let verdict = LexicalVerdict.Verdict(rawValue: name) else { continue }
            for position in positions.arrayValue ?? [] { if let position = position.intValue { wanted[Int(position)] = verdict } }
        }
        let base = records
        let prefix = Array("{\"index\":".utf8)
        for position in 0..<count {
            guard let line = try lines.nextContentLine() else {
                throw RecordError("\(lines.path): the shard's part holds \(position) lines, its marker says \(count)")
            }
            // `{"index":<n>,` renumbered; the rest as the shard wrote it.
            guard line.starts(with: prefix), let comma = line[(line.startIndex + prefix.count)...].firstIndex(of: 0x2C) else {
                throw RecordError("\(lines.path):\(lines.lineNumber): not a line of an audit (no leading \"index\")")
            }
            var renumbered = prefix + Array(String(base + position + 1).utf8)
            renumbered.append(contentsOf: line[comma...])
            try self.lines?.write(lineBytes: renumbered)
            if let verdict = wanted[position], pendingExamples[verdict, default: []].count < AuditReport.examplesPerVerdict {
                pendingExamples[verdict, default: []].append((base + position, renumbered))
            }
        }
        if try lines.nextContentLine() != nil { throw RecordError("\(lines.path): the shard's part holds more than the \(count) lines its marker says") }

        hashes.withUnsafeBytes { raw in
            func word(_ index: Int) -> UInt64 { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)) }
            for position in 0..<count {
                let hash = word(position * 2)
                normalised.append(hash)
                // A shard keeps the SimHash of the first record of each normalised query in it;
                // the first in the whole benchmark is the first in its shard.
                let first = hash != 0 && firstOfNormalised.insert(hash).inserted
                simHashes.append(first ? word(position * 2 + 1) : 0)
            }
            for index in 0..<distinctCount { distinct.insert(word(count * 2 + index)) }
        }
        records += count
        judged += try int("judged")
        for entry in summary["unjudged"]?.arrayValue ?? [] {
            unjudged.append((entry.arrayValue?.first?.stringValue ?? "", entry.arrayValue?.last?.stringValue ?? ""))
        }
        overall.add(AuditReport.Counts(state: summary["overall"]))
        for (category, state) in summary["per_category"]?.objectValue ?? [:] {
            perCategory[category, default: AuditReport.Counts()].add(AuditReport.Counts(state: state))
        }
        for entry in summary["terms"]?.arrayValue ?? [] {
            guard let fields = entry.arrayValue, fields.count == 3, let term = fields[0].stringValue, let source = fields[1].stringValue,
                  let n = fields[2].intValue else { throw RecordError("\(part): a leaking term of the shard's marker is not [term, source, count]") }
            let key = term + "\u{0}" + source
            terms[key] = (term, source, (terms[key]?.count ?? 0) + Int(n))
        }
        emptyCount += try int("empty")
        for location in summary["empty_locations"]?.stringArray ?? [] where emptyLocations.count < Self.emptyShown {
            emptyLocations.append(location)
        }
    }
}

extension AuditReport.Counts {
    /// The counts as a shard's marker keeps them.
    var state: JSONValue {
        .object(["records": .int(Int64(records)), "pair_harmful": .int(Int64(pairHarmful)), "pair_judged": .int(Int64(pairJudged)),
                 "verdicts": .object(Dictionary(uniqueKeysWithValues: byVerdict.map { ($0.key.rawValue, .int(Int64($0.value))) }))])
    }

    init(state: JSONValue?) {
        self.init()
        records = Int(state?["records"]?.intValue ?? 0)
        pairHarmful = Int(state?["pair_harmful"]?.intValue ?? 0)
        pairJudged = Int(state?["pair_judged"]?.intValue ?? 0)
        for (name, count) in state?["verdicts"]?.objectValue ?? [:] {
            if let verdict = LexicalVerdict.Verdict(rawValue: name) { byVerdict[verdict] = Int(count.intValue ?? 0) }
        }
    }

    mutating func add(_ other: AuditReport.Counts) {
        records += other.records
        pairHarmful += other.pairHarmful
        pairJudged += other.pairJudged
        for (verdict, count) in other.byVerdict { byVerdict[verdict, default: 0] += count }
    }
}
