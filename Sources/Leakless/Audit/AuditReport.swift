import Foundation
import LeaklessCore

/// The audit of one benchmark: verdict counts and rates overall and per category, the terms
/// that leak most, examples with the leaking spans marked, empty and duplicate queries. Written
/// as JSON, Markdown and a self-contained HTML page.
public struct AuditReport {
    public let title: String
    public let judge: String
    public let findings: [AuditFinding]
    /// Items the judge could not answer, with why.
    public let unjudged: [(AuditItem, String)]
    public let items: [AuditItem]
    public let examplesPerVerdict = 10
    /// SimHash bits within which two distinct queries are near duplicates.
    public static let queryRadius = 3
    // Computed once; the three renderings read them.
    public let overall: Counts
    public let perCategory: [(String, Counts)]
    public let leakingTerms: [(term: String, source: String, count: Int)]
    public let duplicateGroups: [[AuditItem]]
    public let nearDuplicatePairs: [(AuditItem, AuditItem, Int)]

    public init(title: String, judge: String, items: [AuditItem], findings: [AuditFinding], unjudged: [(AuditItem, String)] = []) {
        self.title = title
        self.judge = judge
        self.items = items
        self.findings = findings
        self.unjudged = unjudged
        overall = Self.counts(findings)
        perCategory = Dictionary(grouping: findings, by: { $0.item.category ?? "(none)" }).map { ($0.key, Self.counts($0.value)) }.sorted { $0.0 < $1.0 }
        leakingTerms = Self.leakingTerms(findings)
        duplicateGroups = Self.duplicateGroups(items)
        nearDuplicatePairs = Self.nearDuplicatePairs(items)
    }

    // MARK: - Figures

    public struct Counts {
        public var records = 0
        public var byVerdict: [LexicalVerdict.Verdict: Int] = [:]
        public var pairHarmful = 0
        public var pairJudged = 0

        mutating func add(_ finding: AuditFinding) {
            records += 1
            byVerdict[finding.verdict, default: 0] += 1
            if let harmful = finding.pairHarmful {
                pairJudged += 1
                if harmful { pairHarmful += 1 }
            }
        }

        public func rate(_ verdict: LexicalVerdict.Verdict) -> Double { records == 0 ? 0 : Double(byVerdict[verdict] ?? 0) / Double(records) }
        /// Leaking or harmful alone.
        public var flaggedRate: Double { rate(.leaks) + rate(.harmfulAlone) }

        var json: JSONValue {
            var object: [String: JSONValue] = ["records": .int(Int64(records)), "flagged_rate": .double((flaggedRate).rounded(places: 4))]
            for verdict in LexicalVerdict.Verdict.allCases {
                object[verdict.rawValue] = .object(["count": .int(Int64(byVerdict[verdict] ?? 0)), "rate": .double((rate(verdict)).rounded(places: 4))])
            }
            // The paper's measure of leakage: R2, the share whose text alone is unsafe, against
            // R1, the share of pairs that are unsafe (known only when the judge saw the image).
            object["r2_text_alone_unsafe"] = .double((rate(.harmfulAlone)).rounded(places: 4))
            object["r1_pair_unsafe"] = pairJudged == 0 ? .null : .double((Double(pairHarmful) / Double(pairJudged)).rounded(places: 4))
            return .object(object)
        }
    }

    static func counts(_ findings: [AuditFinding]) -> Counts {
        var counts = Counts()
        findings.forEach { counts.add($0) }
        return counts
    }

    /// Terms behind leaking and harmful-alone verdicts, most frequent first.
    static func leakingTerms(_ findings: [AuditFinding]) -> [(term: String, source: String, count: Int)] {
        var counts: [String: (String, String, Int)] = [:]
        for finding in findings where finding.flagged {
            for evidence in finding.evidence {
                let key = evidence.term.lowercased() + "\u{0}" + evidence.source
                counts[key] = (evidence.term.lowercased(), evidence.source, (counts[key]?.2 ?? 0) + 1)
            }
        }
        return counts.values.map { (term: $0.0, source: $0.1, count: $0.2) }
            .sorted { ($1.count, $0.term) < ($0.count, $1.term) }
    }

    public var emptyQueries: [AuditItem] { items.filter { $0.query.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty } }

    /// Groups of items with the same query after normalisation (case, spacing, punctuation), of
    /// two or more, largest first.
    static func duplicateGroups(_ items: [AuditItem]) -> [[AuditItem]] {
        Dictionary(grouping: items.filter { !Text.normalized($0.query).isEmpty }, by: { Text.normalized($0.query) }).values
            .filter { $0.count > 1 }.sorted { ($1.count, $0[0].location) < ($0.count, $1[0].location) }
    }

    /// Pairs of distinct normalised queries whose SimHashes are within `queryRadius` bits.
    static func nearDuplicatePairs(_ items: [AuditItem]) -> [(AuditItem, AuditItem, Int)] {
        var firstOf: [String: AuditItem] = [:]
        var distinct: [AuditItem] = []
        for item in items {
            let normalized = Text.normalized(item.query)
            guard !normalized.isEmpty, firstOf[normalized] == nil else { continue }
            firstOf[normalized] = item
            distinct.append(item)
        }
        let hashes = distinct.map { TextSimHash.hash($0.query) }
        return HammingSearch.pairs(hashes, radius: Self.queryRadius, threads: 2).map { (distinct[Int($0.first)], distinct[Int($0.second)], Int($0.distance)) }
    }

    public var distinctQueries: Int { Set(items.map(\.query)).count }

    // MARK: - JSON

    public var json: JSONValue {
        let duplicates = duplicateGroups
        return .object([
            "title": .string(title), "judge": .string(judge), "records": .int(Int64(items.count)),
            "judged": .int(Int64(findings.count)), "unjudged": .array(unjudged.map { .object(["location": .string($0.0.location), "why": .string($0.1)]) }),
            "overall": overall.json,
            "per_category": .object(Dictionary(uniqueKeysWithValues: perCategory.map { ($0.0, $0.1.json) })),
            "leaking_terms": .array(leakingTerms.prefix(50).map { .object(["term": .string($0.term), "source": .string($0.source), "count": .int(Int64($0.count))]) }),
            "empty_queries": .array(emptyQueries.map { .string($0.location) }),
            "distinct_queries": .int(Int64(distinctQueries)),
            "distinct_normalised_queries": .int(Int64(Set(items.map { Text.normalized($0.query) }).count)),
            "duplicate_queries": .object([
                "groups": .int(Int64(duplicates.count)), "extra_copies": .int(Int64(duplicates.reduce(0) { $0 + $1.count - 1 })),
                "largest": .array(duplicates.prefix(20).map { group in
                    .object(["query": .string(group[0].query), "count": .int(Int64(group.count)), "locations": .array(group.prefix(5).map { .string($0.location) })])
                }),
            ]),
            "near_duplicate_queries": .array(nearDuplicatePairs.prefix(50).map {
                .object(["first": .string($0.0.query), "second": .string($0.1.query), "simhash_distance": .int(Int64($0.2)),
                         "locations": .array([.string($0.0.location), .string($0.1.location)])])
            }),
            "examples": .object(Dictionary(uniqueKeysWithValues: [LexicalVerdict.Verdict.leaks, .harmfulAlone, .meaningless].map { verdict in
                (verdict.rawValue, JSONValue.array(examples(verdict).map { finding in
                    .object([
                        "location": .string(finding.item.location), "query": .string(finding.item.query), "score": .double((finding.score).rounded(places: 4)),
                        "spans": .array(finding.evidence.map { .object(["span": .string($0.span), "term": .string($0.term), "source": .string($0.source), "offset": .int(Int64($0.offset)), "length": .int(Int64($0.length))]) }),
                    ])
                }))
            })),
        ])
    }

    func examples(_ verdict: LexicalVerdict.Verdict) -> [AuditFinding] {
        Array(findings.filter { $0.verdict == verdict }.prefix(examplesPerVerdict))
    }

    // MARK: - Markdown

    public var markdown: String {
        let all = overall
        var lines = ["# Leakage audit: \(title)", ""]
        lines.append("Judge: \(judge). Records: \(items.count); judged: \(findings.count)\(unjudged.isEmpty ? "" : "; not judged: \(unjudged.count)").")
        lines.append("")
        lines.append("| verdict | count | rate |")
        lines.append("|---|---|---|")
        for verdict in LexicalVerdict.Verdict.allCases {
            lines.append("| \(verdict.rawValue) | \(all.byVerdict[verdict] ?? 0) | \(percent(all.rate(verdict))) |")
        }
        lines.append("| leaks or harmful-alone | \((all.byVerdict[.leaks] ?? 0) + (all.byVerdict[.harmfulAlone] ?? 0)) | \(percent(all.flaggedRate)) |")
        if all.pairJudged > 0 {
            lines.append("")
            lines.append("R2 (text alone unsafe) \(percent(all.rate(.harmfulAlone))) against R1 (pair unsafe) \(percent(Double(all.pairHarmful) / Double(all.pairJudged))).")
        }
        lines += ["", "## Per category", "", "| category | records | leaks | harmful-alone | meaningless | flagged |", "|---|---|---|---|---|---|"]
        for (category, counts) in perCategory {
            lines.append("| \(escapeTable(category)) | \(counts.records) | \(counts.byVerdict[.leaks] ?? 0) | \(counts.byVerdict[.harmfulAlone] ?? 0) | \(counts.byVerdict[.meaningless] ?? 0) | \(percent(counts.flaggedRate)) |")
        }
        lines += ["", "## Most frequent leaking terms", "", "| term | matched as | queries |", "|---|---|---|"]
        for term in leakingTerms.prefix(20) { lines.append("| \(escapeTable(term.term)) | \(term.source) | \(term.count) |") }
        lines += ["", "## Queries", ""]
        let duplicates = duplicateGroups
        lines.append("- \(items.count) records, \(distinctQueries) distinct query strings, \(emptyQueries.count) empty (\(emptyQueries.prefix(5).map(\.location).joined(separator: "; ")))")
        lines.append("- \(duplicates.count) queries appear more than once after normalisation (\(duplicates.reduce(0) { $0 + $1.count - 1 }) extra copies)")
        for group in duplicates.prefix(10) {
            lines.append("  - \(group.count)x \"\(escapeTable(group[0].query))\" (\(group.prefix(3).map(\.location).joined(separator: "; ")))")
        }
        let near = nearDuplicatePairs
        lines.append("- \(near.count) pairs of near-duplicate queries (SimHash within \(Self.queryRadius) bits)")
        for pair in near.prefix(10) { lines.append("  - \"\(escapeTable(pair.0.query))\" ~ \"\(escapeTable(pair.1.query))\"") }
        for verdict in [LexicalVerdict.Verdict.harmfulAlone, .leaks, .meaningless] where !examples(verdict).isEmpty {
            lines += ["", "## Examples: \(verdict.rawValue)", ""]
            for finding in examples(verdict) {
                let marked = mark(finding.item.query, finding.evidence, open: "**", close: "**", escape: escapeTable)
                let why = finding.evidence.map { "\($0.term) (\($0.source))" }.joined(separator: ", ")
                lines.append("- \(marked) — \(why.isEmpty ? (finding.reason ?? "") : why) [\(finding.item.location)]")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: - HTML

    public var html: String {
        let all = overall
        var body = "<h1>Leakage audit: \(escapeHTML(title))</h1>\n"
        body += "<p>Judge: \(escapeHTML(judge)). Records: <b id=\"records\">\(items.count)</b>; judged: \(findings.count)\(unjudged.isEmpty ? "" : "; not judged: \(unjudged.count)").</p>\n"
        body += "<table><tr><th>verdict</th><th>count</th><th>rate</th><th></th></tr>\n"
        for verdict in LexicalVerdict.Verdict.allCases {
            let rate = all.rate(verdict)
            body += "<tr class=\"\(verdict.rawValue)\"><td>\(verdict.rawValue)</td><td class=\"n\">\(all.byVerdict[verdict] ?? 0)</td><td class=\"n\">\(percent(rate))</td><td><span class=\"bar\" style=\"width:\(Int((rate * 300).rounded()))px\"></span></td></tr>\n"
        }
        body += "</table>\n"
        if all.pairJudged > 0 {
            body += "<p>R2 (text alone unsafe) \(percent(all.rate(.harmfulAlone))) against R1 (pair unsafe) \(percent(Double(all.pairHarmful) / Double(all.pairJudged))).</p>\n"
        }
        body += "<h2>Per category</h2>\n<table><tr><th>category</th><th>records</th><th>leaks</th><th>harmful-alone</th><th>meaningless</th><th>flagged</th></tr>\n"
        for (category, counts) in perCategory {
            body += "<tr><td>\(escapeHTML(category))</td><td class=\"n\">\(counts.records)</td><td class=\"n\">\(counts.byVerdict[.leaks] ?? 0)</td><td class=\"n\">\(counts.byVerdict[.harmfulAlone] ?? 0)</td><td class=\"n\">\(counts.byVerdict[.meaningless] ?? 0)</td><td class=\"n\">\(percent(counts.flaggedRate))</td></tr>\n"
        }
        body += "</table>\n<h2>Most frequent leaking terms</h2>\n<table><tr><th>term</th><th>matched as</th><th>queries</th></tr>\n"
        for term in leakingTerms.prefix(20) {
            body += "<tr><td>\(escapeHTML(term.term))</td><td>\(escapeHTML(term.source))</td><td class=\"n\">\(term.count)</td></tr>\n"
        }
        let duplicates = duplicateGroups
        body += "</table>\n<h2>Queries</h2>\n<ul>\n"
        body += "<li>\(items.count) records, \(distinctQueries) distinct query strings, \(emptyQueries.count) empty\(emptyQueries.isEmpty ? "" : " (" + escapeHTML(emptyQueries.prefix(5).map(\.location).joined(separator: "; ")) + ")")</li>\n"
        body += "<li>\(duplicates.count) queries appear more than once after normalisation (\(duplicates.reduce(0) { $0 + $1.count - 1 }) extra copies)<ul>\n"
        for group in duplicates.prefix(10) {
            body += "<li>\(group.count)&times; &ldquo;\(escapeHTML(group[0].query))&rdquo; <small>\(escapeHTML(group.prefix(3).map(\.location).joined(separator: "; ")))</small></li>\n"
        }
        let near = nearDuplicatePairs
        body += "</ul></li>\n<li>\(near.count) pairs of near-duplicate queries (SimHash within \(Self.queryRadius) bits)<ul>\n"
        for pair in near.prefix(10) { body += "<li>&ldquo;\(escapeHTML(pair.0.query))&rdquo; ~ &ldquo;\(escapeHTML(pair.1.query))&rdquo;</li>\n" }
        body += "</ul></li>\n</ul>\n"
        for verdict in [LexicalVerdict.Verdict.harmfulAlone, .leaks, .meaningless] where !examples(verdict).isEmpty {
            body += "<h2>Examples: \(verdict.rawValue)</h2>\n<table><tr><th>query</th><th>why</th><th>where</th></tr>\n"
            for finding in examples(verdict) {
                let why = finding.evidence.map { "\($0.term) (\($0.source))" }.joined(separator: ", ")
                body += "<tr><td>\(mark(finding.item.query, finding.evidence, open: "<mark>", close: "</mark>", escape: escapeHTML))</td><td>\(escapeHTML(why.isEmpty ? (finding.reason ?? "") : why))</td><td><small>\(escapeHTML(finding.item.location))</small></td></tr>\n"
            }
            body += "</table>\n"
        }
        return ReportPage.page(title: "Leakage audit: \(title)", body: body)
    }

    // MARK: - Writing

    /// One line per audited record, in the benchmark's order: where it was read (`FILE:LINE` or
    /// `FILE: record N`), its id, the query, and the judge's verdict, score and evidence (or why
    /// it was not judged), so a user can filter the benchmark by it.
    public var recordLines: [String] {
        var byLocation: [String: AuditFinding] = [:]
        for finding in findings { byLocation[finding.item.location] = finding }
        var notJudged: [String: String] = [:]
        for (item, why) in unjudged { notJudged[item.location] = why }
        return items.enumerated().map { index, item in
            var line: [String: JSONValue] = [
                "index": .int(Int64(index + 1)), "id": .string(item.id), "location": .string(item.location), "query": .string(item.query),
            ]
            if let finding = byLocation[item.location] {
                line["verdict"] = .string(finding.verdict.rawValue)
                line["flagged"] = .bool(finding.flagged)
                line["score"] = .double(finding.score.rounded(places: 4))
                line["evidence"] = .array(finding.evidence.map { evidence in
                    ["span": .string(evidence.span), "term": .string(evidence.term), "source": .string(evidence.source),
                     "offset": .int(Int64(evidence.offset)), "length": .int(Int64(evidence.length))]
                })
                if let pair = finding.pairHarmful { line["pair_harmful"] = .bool(pair) }
                if let reason = finding.reason { line["reason"] = .string(reason) }
            } else {
                line["verdict"] = "not-judged"
                line["reason"] = .string(notJudged[item.location] ?? "no verdict")
            }
            line["judge"] = .string(judge)
            return JSONWriter.canonical(.object(line))
        }
    }

    /// Writes audit.jsonl, audit.json, audit.md and audit.html into `folder`.
    public func write(to folder: String) throws {
        try FileSystem.createDirectory(folder)
        try AtomicFile.write(recordLines.map { $0 + "\n" }.joined(), to: FileSystem.join(folder, "audit.jsonl"))
        try AtomicFile.write(Array(JSONWriter.pretty(json).utf8), to: FileSystem.join(folder, "audit.json"))
        try AtomicFile.write(Array(markdown.utf8), to: FileSystem.join(folder, "audit.md"))
        try AtomicFile.write(Array(html.utf8), to: FileSystem.join(folder, "audit.html"))
    }
}

/// The query with each evidence span wrapped; overlapping spans are merged.
func mark(_ query: String, _ evidence: [LexicalVerdict.Evidence], open: String, close: String, escape: (String) -> String) -> String {
    let characters = Array(query)
    var marked = [Bool](repeating: false, count: characters.count)
    for item in evidence where item.length > 0 {
        for index in item.offset..<min(characters.count, item.offset + item.length) { marked[index] = true }
    }
    var output = "", run = "", inside = false
    func flush() {
        output += inside ? open + escape(run) + close : escape(run)
        run = ""
    }
    for (index, character) in characters.enumerated() {
        if marked[index] != inside {
            flush()
            inside = marked[index]
        }
        run.append(character)
    }
    flush()
    return output
}
