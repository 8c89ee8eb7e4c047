import LeaklessCore

/// An audit made as records are judged, in the benchmark's order, holding per record only what
/// duplicate detection needs (two 64-bit hashes and a third for distinct strings): each
/// record's line goes to `audit.jsonl` as it is decided, and the counts, leaking terms and the
/// first examples are kept as they come. At the end the groups and near pairs to show are
/// found from the hashes, and their text is read again from the benchmark.
private struct RereadDone: Error {}

public struct AuditAccumulator {
    let title: String
    public let judge: String
    /// Where each record's line goes; nil: kept in memory for the report.
    let lines: JSONLWriter?
    var keptLines: [String] = []

    public internal(set) var records = 0
    var judged = 0
    var unjudged: [(location: String, why: String)] = []
    var overall = AuditReport.Counts()
    var perCategory: [String: AuditReport.Counts] = [:]
    var terms: [String: (term: String, source: String, count: Int)] = [:]
    var examples: [LexicalVerdict.Verdict: [AuditFinding]] = [:]
    /// Each example's position (from 0), in the order of `examples`: what a shard tells the merge.
    var examplePositions: [LexicalVerdict.Verdict: [Int]] = [:]
    /// A merge's examples: their positions and lines, made findings once their items are read again.
    var pendingExamples: [LexicalVerdict.Verdict: [(position: Int, line: [UInt8])]] = [:]
    var emptyCount = 0
    var emptyLocations: [String] = []
    var distinct = Set<UInt64>()
    /// Per record, by its position: the hash of its normalised query (0: nothing left), and its SimHash.
    var normalised: [UInt64] = []
    var simHashes: [UInt64] = []
    var firstOfNormalised = Set<UInt64>()

    static let emptyShown = 100
    static let groupsShown = 20
    static let nearShown = 50

    public init(title: String, judge: String, lines: JSONLWriter?) {
        self.title = title
        self.judge = judge
        self.lines = lines
    }

    /// What one record contributes, computed apart from the others (so on any thread): its
    /// normalised-query hash, SimHash, raw-query hash and its `audit.jsonl` line, numbered later.
    public struct Prepared: Sendable {
        let item: AuditItem
        let finding: AuditFinding?
        let why: String?
        let normalised: UInt64
        let simHash: UInt64
        let raw: UInt64
        /// The line's fields after "index" (a JSON object's inside, keys sorted).
        let fields: String
    }

    /// Prepares a record. `tokens`, when given, are the query's (`Text.tokens(item.query)`), so
    /// it is not tokenised again.
    public static func prepare(_ item: AuditItem, finding: AuditFinding?, why: String?, judge: String, tokens: [Token]? = nil) -> Prepared {
        let query = item.query
        let normalisedText = Text.normalized(tokens ?? Text.tokens(query))
        let hash: UInt64 = normalisedText.isEmpty ? 0 : max(1, ContentHash.xxh64(normalisedText))
        // The line's fields in canonical (sorted) key order, written directly: this runs once per
        // record, and a JSON value with its key sort would be a tenth of the audit's time.
        var line: [UInt8] = []
        line.reserveCapacity(query.utf8.count * 2 + 160)
        func key(_ name: StaticString, first: Bool = false) {
            if !first { line.append(0x2C) }
            line.append(0x22)
            name.withUTF8Buffer { line.append(contentsOf: $0) }
            line.append(contentsOf: [0x22, 0x3A])
        }
        func string(_ value: String) { JSONWriter.appendString(value, to: &line) }
        if let finding {
            key("evidence", first: true)
            line.append(0x5B)
            for (index, evidence) in finding.evidence.enumerated() {
                if index > 0 { line.append(0x2C) }
                line.append(0x7B)
                key("length", first: true); line.append(contentsOf: Array(String(evidence.length).utf8))
                key("offset"); line.append(contentsOf: Array(String(evidence.offset).utf8))
                key("source"); string(evidence.source)
                key("span"); string(evidence.span)
                key("term"); string(evidence.term)
                line.append(0x7D)
            }
            line.append(0x5D)
            key("flagged"); line.append(contentsOf: Array((finding.flagged ? "true" : "false").utf8))
            key("id"); string(item.id)
            key("judge"); string(judge)
            key("location"); string(item.location)
            if let pair = finding.pairHarmful { key("pair_harmful"); line.append(contentsOf: Array((pair ? "true" : "false").utf8)) }
            key("query"); string(query)
            if let reason = finding.reason { key("reason"); string(reason) }
            key("score"); line.append(contentsOf: Array(JSONWriter.number(finding.score.rounded(places: 4)).utf8))
            key("verdict"); string(finding.verdict.rawValue)
        } else {
            key("id", first: true); string(item.id)
            key("judge"); string(judge)
            key("location"); string(item.location)
            key("query"); string(query)
            key("reason"); string(why ?? "no verdict")
            key("verdict"); string("not-judged")
        }
        return Prepared(
            item: item, finding: finding, why: why, normalised: hash,
            simHash: normalisedText.isEmpty ? 0 : TextSimHash.hash(normalized: normalisedText), raw: ContentHash.xxh64(query),
            fields: String(decoding: line, as: UTF8.self))
    }

    /// The next record with the judge's finding, or why it has none.
    public mutating func add(_ item: AuditItem, finding: AuditFinding?, why: String?, tokens: [Token]? = nil) throws {
        try add(Self.prepare(item, finding: finding, why: why, judge: judge, tokens: tokens))
    }

    /// The next record, prepared.
    public mutating func add(_ prepared: Prepared) throws {
        records += 1
        let item = prepared.item
        if item.query.allSatisfy(\.isWhitespace) {
            emptyCount += 1
            if emptyLocations.count < Self.emptyShown { emptyLocations.append(item.location) }
        }
        distinct.insert(prepared.raw)
        normalised.append(prepared.normalised)
        // SimHashes are kept only for the first record of each normalised query: near pairs are
        // sought among those.
        let first = prepared.normalised != 0 && firstOfNormalised.insert(prepared.normalised).inserted
        simHashes.append(first ? prepared.simHash : 0)
        if let finding = prepared.finding {
            judged += 1
            overall.add(finding)
            perCategory[item.category ?? "(none)", default: AuditReport.Counts()].add(finding)
            if finding.flagged {
                for evidence in finding.evidence {
                    let key = evidence.term.lowercased() + "\u{0}" + evidence.source
                    terms[key] = (evidence.term.lowercased(), evidence.source, (terms[key]?.count ?? 0) + 1)
                }
            }
            if finding.verdict != .clean, examples[finding.verdict, default: []].count < AuditReport.examplesPerVerdict {
                examples[finding.verdict, default: []].append(finding)
                examplePositions[finding.verdict, default: []].append(records - 1)
            }
        } else {
            unjudged.append((item.location, prepared.why ?? "no verdict"))
        }
        // "index" first, then the other fields in canonical order.
        let line = "{\"index\":\(records),\(prepared.fields)}"
        if let lines {
            try lines.write(line: line)
        } else {
            keptLines.append(line)
        }
    }

    /// The report. `reread` visits the benchmark's items again, in the same order, so the
    /// duplicate groups and near pairs shown get their text and locations.
    public mutating func finish(reread: ((AuditItem) throws -> Void) throws -> Void) throws -> AuditReport {
        try lines?.commit()
        // Duplicate groups: positions sorted by normalised hash, runs of two or more.
        let order = normalised.indices.filter { normalised[$0] != 0 }.sorted { (normalised[$0], $0) < (normalised[$1], $1) }
        var groups: [[Int]] = []
        var start = 0
        while start < order.count {
            var end = start + 1
            while end < order.count, normalised[order[end]] == normalised[order[start]] { end += 1 }
            if end - start > 1 { groups.append(Array(order[start..<end])) }
            start = end
        }
        groups.sort { ($1.count, $0[0]) < ($0.count, $1[0]) }
        let extraCopies = groups.reduce(0) { $0 + $1.count - 1 }
        // Near duplicates among the first record of each distinct normalised query.
        var firsts: [Int] = []
        var seen = Set<UInt64>()
        for index in normalised.indices where normalised[index] != 0 && seen.insert(normalised[index]).inserted { firsts.append(index) }
        firstOfNormalised = []
        let near = HammingSearch.pairs(firsts.map { simHashes[$0] }, radius: AuditReport.queryRadius, threads: 2)
            .map { (firsts[Int($0.first)], firsts[Int($0.second)], Int($0.distance)) }
            .sorted { ($0.0, $0.1) < ($1.0, $1.1) }

        let shownGroups = groups.prefix(Self.groupsShown).map { Array($0.prefix(5)) }
        let shownNear = Array(near.prefix(Self.nearShown))
        var wanted = Set(shownGroups.flatMap { $0 })
        for pair in shownNear { wanted.insert(pair.0); wanted.insert(pair.1) }
        for list in pendingExamples.values { for example in list { wanted.insert(example.position) } }
        var found: [Int: AuditItem] = [:]
        if let last = wanted.max() {
            // Read again only up to the last record shown.
            var position = 0
            do {
                try reread { item in
                    if wanted.contains(position) { found[position] = item }
                    position += 1
                    if position > last { throw RereadDone() }
                }
            } catch is RereadDone {}
        }
        let duplicateGroups = zip(groups.prefix(Self.groupsShown), shownGroups).compactMap { group, shown -> AuditReport.DuplicateGroup? in
            guard let first = found[shown[0]] else { return nil }
            return AuditReport.DuplicateGroup(query: first.query, count: group.count, locations: shown.compactMap { found[$0]?.location })
        }
        let nearPairs = shownNear.compactMap { pair -> AuditReport.NearDuplicate? in
            guard let first = found[pair.0], let second = found[pair.1] else { return nil }
            return AuditReport.NearDuplicate(first: first, second: second, distance: pair.2)
        }
        for (verdict, list) in pendingExamples {
            examples[verdict] = try list.compactMap { example -> AuditFinding? in
                guard let item = found[example.position] else { return nil }
                return try AuditFinding.fromLine(JSONParser.parse(bytes: example.line), item: item).0
            }
        }
        return AuditReport(
            title: title, judge: judge, records: records, judged: judged, unjudged: unjudged, overall: overall,
            perCategory: perCategory.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
            leakingTerms: terms.values.sorted { ($1.count, $0.term) < ($0.count, $1.term) },
            duplicateGroupCount: groups.count, duplicateExtraCopies: extraCopies, duplicateGroups: duplicateGroups,
            nearDuplicateCount: near.count, nearDuplicatePairs: nearPairs, emptyQueryCount: emptyCount, emptyLocations: emptyLocations,
            distinctQueries: distinct.count, distinctNormalisedQueries: seen.count + (normalised.contains(0) ? 1 : 0),
            examples: examples, recordLines: lines == nil ? keptLines : nil)
    }
}
