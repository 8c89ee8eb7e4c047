import Foundation
import LeaklessCore

/// The audit of one benchmark: verdict counts and rates overall and per category, the terms
/// that leak most, examples with the leaking spans marked, empty and duplicate queries. Written
/// as JSON, Markdown and a self-contained HTML page; `audit.jsonl`, one line per record, is
/// written as the records are judged (see `AuditAccumulator`).
public struct AuditReport {
    public let title: String
    public let judge: String
    public let records: Int
    public let judged: Int
    /// Records the judge could not answer: where, and why.
    public let unjudged: [(location: String, why: String)]
    public static let examplesPerVerdict = 10
    /// SimHash bits within which two distinct queries are near duplicates.
    public static let queryRadius = 3
    public let overall: Counts
    public let perCategory: [(String, Counts)]
    public let leakingTerms: [(term: String, source: String, count: Int)]
    /// Queries repeated after normalisation, largest first: every group counted, the first
    /// `shownGroups` with their text and first locations.
    public let duplicateGroupCount: Int
    public let duplicateExtraCopies: Int
    public let duplicateGroups: [DuplicateGroup]
    public let nearDuplicateCount: Int
    public let nearDuplicatePairs: [NearDuplicate]
    public let emptyQueryCount: Int
    public let emptyLocations: [String]
    public let distinctQueries: Int
    public let distinctNormalisedQueries: Int
    /// The first examples of each verdict, in the benchmark's order.
    public let examples: [LexicalVerdict.Verdict: [AuditFinding]]
    /// audit.jsonl's lines when the report was made in memory (nil: the accumulator wrote them).
    let recordLines: [String]?

    public struct DuplicateGroup: Sendable {
        public let query: String
        public let count: Int
        public let locations: [String]
    }

    public struct NearDuplicate: Sendable {
        public let first: AuditItem
        public let second: AuditItem
        public let distance: Int
    }

    /// An audit of items held in memory (tests, small sets): the same figures as a streamed one.
    public init(title: String, judge: String, items: [AuditItem], findings: [AuditFinding], unjudged: [(AuditItem, String)] = []) {
        var byLocation: [String: AuditFinding] = [:]
        for finding in findings { byLocation[finding.item.location] = finding }
        var why: [String: String] = [:]
        for (item, reason) in unjudged { why[item.location] = reason }
        var accumulator = AuditAccumulator(title: title, judge: judge, lines: nil)
        for item in items { try! accumulator.add(item, finding: byLocation[item.location], why: why[item.location]) }
        self = try! accumulator.finish { visit in for item in items { try visit(item) } }
    }

    init(title: String, judge: String, records: Int, judged: Int, unjudged: [(location: String, why: String)], overall: Counts,
         perCategory: [(String, Counts)], leakingTerms: [(term: String, source: String, count: Int)], duplicateGroupCount: Int,
         duplicateExtraCopies: Int, duplicateGroups: [DuplicateGroup], nearDuplicateCount: Int, nearDuplicatePairs: [NearDuplicate],
         emptyQueryCount: Int, emptyLocations: [String], distinctQueries: Int, distinctNormalisedQueries: Int,
         examples: [LexicalVerdict.Verdict: [AuditFinding]], recordLines: [String]?) {
        self.title = title
        self.judge = judge
        self.records = records
        self.judged = judged
        self.unjudged = unjudged
        self.overall = overall
        self.perCategory = perCategory
        self.leakingTerms = leakingTerms
        self.duplicateGroupCount = duplicateGroupCount
        self.duplicateExtraCopies = duplicateExtraCopies
        self.duplicateGroups = duplicateGroups
        self.nearDuplicateCount = nearDuplicateCount
        self.nearDuplicatePairs = nearDuplicatePairs
        self.emptyQueryCount = emptyQueryCount
        self.emptyLocations = emptyLocations
        self.distinctQueries = distinctQueries
        self.distinctNormalisedQueries = distinctNormalisedQueries
        self.examples = examples
        self.recordLines = recordLines
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

    // MARK: - JSON

    public var json: JSONValue {
        .object([
            "title": .string(title), "judge": .string(judge), "records": .int(Int64(records)),
            "judged": .int(Int64(judged)), "unjudged": .array(unjudged.map { .object(["location": .string($0.location), "why": .string($0.why)]) }),
            "overall": overall.json,
            "per_category": .object(Dictionary(uniqueKeysWithValues: perCategory.map { ($0.0, $0.1.json) })),
            "leaking_terms": .array(leakingTerms.prefix(50).map { .object(["term": .string($0.term), "source": .string($0.source), "count": .int(Int64($0.count))]) }),
            "empty_queries": .object(["count": .int(Int64(emptyQueryCount)), "locations": .array(emptyLocations.map(JSONValue.string))]),
            "distinct_queries": .int(Int64(distinctQueries)),
            "distinct_normalised_queries": .int(Int64(distinctNormalisedQueries)),
            "duplicate_queries": .object([
                "groups": .int(Int64(duplicateGroupCount)), "extra_copies": .int(Int64(duplicateExtraCopies)),
                "largest": .array(duplicateGroups.map { group in
                    .object(["query": .string(group.query), "count": .int(Int64(group.count)), "locations": .array(group.locations.map(JSONValue.string))])
                }),
            ]),
            "near_duplicate_queries": .object([
                "pairs": .int(Int64(nearDuplicateCount)),
                "first": .array(nearDuplicatePairs.map {
                    .object(["first": .string($0.first.query), "second": .string($0.second.query), "simhash_distance": .int(Int64($0.distance)),
                             "locations": .array([.string($0.first.location), .string($0.second.location)])])
                }),
            ]),
            "examples": .object(Dictionary(uniqueKeysWithValues: [LexicalVerdict.Verdict.leaks, .harmfulAlone, .meaningless].map { verdict in
                (verdict.rawValue, JSONValue.object([
                    "total": .int(Int64(overall.byVerdict[verdict] ?? 0)),
                    "shown": .array((examples[verdict] ?? []).map { finding in
                        .object([
                            "location": .string(finding.item.location), "query": .string(finding.item.query), "score": .double((finding.score).rounded(places: 4)),
                            "spans": .array(finding.evidence.map { .object(["span": .string($0.span), "term": .string($0.term), "source": .string($0.source), "offset": .int(Int64($0.offset)), "length": .int(Int64($0.length))]) }),
                        ])
                    }),
                ]))
            })),
        ])
    }

    /// "the first 10 of 42", or "all 3".
    func shown(_ count: Int, of total: Int) -> String { count == total ? "all \(total)" : "the first \(count) of \(total)" }

    // MARK: - Markdown

    public var markdown: String {
        let all = overall
        var lines = ["# Leakage audit: \(title)", ""]
        lines.append("Judge: \(judge). Records: \(records); judged: \(judged)\(unjudged.isEmpty ? "" : "; not judged: \(unjudged.count)").")
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
        lines.append("- \(records) records, \(distinctQueries) distinct query strings, \(emptyQueryCount) empty\(emptyLocations.isEmpty ? "" : " (" + emptyLocations.prefix(5).joined(separator: "; ") + ")")")
        lines.append("- \(duplicateGroupCount) queries appear more than once after normalisation (\(duplicateExtraCopies) extra copies)\(duplicateGroups.isEmpty ? "" : "; \(shown(min(10, duplicateGroups.count), of: duplicateGroupCount)), largest first:")")
        for group in duplicateGroups.prefix(10) {
            lines.append("  - \(group.count)x \"\(escapeTable(group.query))\" (\(group.locations.prefix(3).joined(separator: "; ")))")
        }
        lines.append("- \(nearDuplicateCount) pairs of near-duplicate queries (SimHash within \(Self.queryRadius) bits)\(nearDuplicatePairs.isEmpty ? "" : "; \(shown(min(10, nearDuplicatePairs.count), of: nearDuplicateCount)):")")
        for pair in nearDuplicatePairs.prefix(10) { lines.append("  - \"\(escapeTable(pair.first.query))\" ~ \"\(escapeTable(pair.second.query))\"") }
        for verdict in [LexicalVerdict.Verdict.harmfulAlone, .leaks, .meaningless] where !(examples[verdict] ?? []).isEmpty {
            let list = examples[verdict] ?? []
            lines += ["", "## Examples: \(verdict.rawValue)", "", "Showing \(shown(list.count, of: overall.byVerdict[verdict] ?? 0)).", ""]
            for finding in list {
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
        body += "<p>Judge: \(escapeHTML(judge)). Records: <b id=\"records\">\(records)</b>; judged: \(judged)\(unjudged.isEmpty ? "" : "; not judged: \(unjudged.count)").</p>\n"
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
        body += "</table>\n<h2>Queries</h2>\n<ul>\n"
        body += "<li>\(records) records, \(distinctQueries) distinct query strings, \(emptyQueryCount) empty\(emptyLocations.isEmpty ? "" : " (" + escapeHTML(emptyLocations.prefix(5).joined(separator: "; ")) + ")")</li>\n"
        body += "<li>\(duplicateGroupCount) queries appear more than once after normalisation (\(duplicateExtraCopies) extra copies)\(duplicateGroups.isEmpty ? "" : "; \(shown(min(10, duplicateGroups.count), of: duplicateGroupCount)), largest first")<ul>\n"
        for group in duplicateGroups.prefix(10) {
            body += "<li>\(group.count)&times; &ldquo;\(escapeHTML(group.query))&rdquo; <small>\(escapeHTML(group.locations.prefix(3).joined(separator: "; ")))</small></li>\n"
        }
        body += "</ul></li>\n<li>\(nearDuplicateCount) pairs of near-duplicate queries (SimHash within \(Self.queryRadius) bits)\(nearDuplicatePairs.isEmpty ? "" : "; \(shown(min(10, nearDuplicatePairs.count), of: nearDuplicateCount))")<ul>\n"
        for pair in nearDuplicatePairs.prefix(10) { body += "<li>&ldquo;\(escapeHTML(pair.first.query))&rdquo; ~ &ldquo;\(escapeHTML(pair.second.query))&rdquo;</li>\n" }
        body += "</ul></li>\n</ul>\n"
        for verdict in [LexicalVerdict.Verdict.harmfulAlone, .leaks, .meaningless] where !(examples[verdict] ?? []).isEmpty {
            let list = examples[verdict] ?? []
            body += "<h2>Examples: \(verdict.rawValue)</h2>\n<p>Showing \(shown(list.count, of: overall.byVerdict[verdict] ?? 0)).</p>\n<table><tr><th>query</th><th>why</th><th>where</th></tr>\n"
            for finding in list {
                let why = finding.evidence.map { "\($0.term) (\($0.source))" }.joined(separator: ", ")
                body += "<tr><td>\(mark(finding.item.query, finding.evidence, open: "<mark>", close: "</mark>", escape: escapeHTML))</td><td>\(escapeHTML(why.isEmpty ? (finding.reason ?? "") : why))</td><td><small>\(escapeHTML(finding.item.location))</small></td></tr>\n"
            }
            body += "</table>\n"
        }
        return ReportPage.page(title: "Leakage audit: \(title)", body: body)
    }

    // MARK: - Writing

    /// Writes audit.json, audit.md and audit.html into `folder` (and audit.jsonl when the report
    /// was made in memory; a streamed audit wrote it as it went).
    public func write(to folder: String) throws {
        try FileSystem.createDirectory(folder)
        if let recordLines {
            try AtomicFile.write(recordLines.map { $0 + "\n" }.joined(), to: FileSystem.join(folder, "audit.jsonl"))
        }
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
