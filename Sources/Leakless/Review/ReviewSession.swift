import Foundation
import Synchronization
import LeaklessCore
import LeaklessModels
import LeaklessImaging

/// What the review app serves and records, without the HTTP around it: the pairs the export
/// reads (the finished output of the stage before it), what the earlier stages said about each,
/// and the workdir's review store, read again on every request so that reviewers working from
/// several servers or tabs see each other's decisions.
public final class ReviewSession: Sendable {
    public let pipelinePath: String
    public let store: ReviewStore
    public let blobs: String
    /// The file the pairs were read from.
    public let pairsFile: String
    public let pairs: [Record]
    private let index: [String: Int]
    /// Per pair, the app's view of it (query, description, evidence, what stages said).
    private let views: [JSONValue]
    /// Judges edited queries, one at a time.
    private let detector: Mutex<(any RecordStage)?>
    /// Reasons offered for a rejection (any other may be typed).
    public static let reasons = [
        "the query names the risk (leakage)", "the image does not show the risk", "the query does not fit the image",
        "harmless pair: no risk at all", "the query is unclear or broken", "duplicate of another pair",
    ]

    public init(pipeline: PipelineConfig) throws {
        pipelinePath = pipeline.path
        let driver = PipelineDriver(pipeline: pipeline, executables: "")
        let plan = try driver.plan()
        guard let export = plan.first(where: { $0.config.definition.needs.contains { $0.name == ExportStage.reviewDecisions } }) else {
            throw DriverError("\(pipeline.path) has no export stage: the review is of the pairs an export reads")
        }
        guard let marker = export.inputMarker, FileSystem.exists(export.input), FileSystem.exists(marker) else {
            throw DriverError("the pairs to review are the export's input, \(export.input), which is not finished yet: run 'leakless run --pipeline \(pipeline.path)' first")
        }
        pairsFile = export.input
        store = ReviewStore(workdir: pipeline.workdirPath)
        blobs = driver.blobs
        var pairs: [Record] = []
        let reader = try JSONLReader(path: export.input)
        while let (_, record) = try reader.nextRecord() {
            if record.kind == "pair" { pairs.append(record) }
        }
        self.pairs = pairs
        index = Dictionary(pairs.enumerated().map { ($0.element.id, $0.offset) }, uniquingKeysWith: { first, _ in first })

        let judge = try ExportStage.editJudge(driver.parameters(ofStage: ExportStage.editJudgeStage) ?? [:], origin: pipeline.path)
        detector = Mutex(try? judge?.make())
        // The page shows the lexicon's spans at its own threshold, whatever the stage's.
        var lexicalSettings = judge?.settings ?? DetectorSettings()
        lexicalSettings.threshold = DetectorSettings().threshold
        let lexical = try lexicalSettings.lexical()
        // What the stage before the export dropped in favour of a kept pair.
        let before = plan.last { $0.files.output == export.input }
        // A reject names the record as that stage read it: a kept pair's own id or its parent's.
        var kept: [String: String] = [:]
        for pair in pairs {
            kept[pair.id] = pair.id
            for parent in pair.parents where kept[parent] == nil { kept[parent] = pair.id }
        }
        let duplicates = try before.map { try Self.duplicates(rejects: $0.files.rejects, of: kept) } ?? [:]
        views = pairs.enumerated().map { position, pair in
            Self.view(of: pair, position: position, lexical: lexical, duplicates: duplicates[pair.id] ?? [])
        }
    }

    public var count: Int { pairs.count }

    /// The records the stage before the export dropped as duplicates of a kept pair, by that
    /// pair; `kept` maps each id a reject may name to the kept pair's id.
    static func duplicates(rejects path: String, of kept: [String: String]) throws -> [String: [JSONValue]] {
        guard FileSystem.exists(path) else { return [:] }
        var found: [String: [JSONValue]] = [:]
        let lines = try LineReader(path: path)
        while let line = try lines.nextLine() {
            guard let reject = try? JSONParser.parse(bytes: Array(line)), let detail = reject["detail"]?.stringValue,
                let named = reject["evidence"]?["kept_pair"]?.stringValue, let pair = kept[named]
            else { continue }
            found[pair, default: []].append([
                "reason": reject["reason"] ?? .null, "detail": .string(detail), "query": reject["record"]?["query"] ?? .null,
            ])
        }
        return found
    }

    static func view(of pair: Record, position: Int, lexical: LexicalDetector, duplicates: [JSONValue]) -> JSONValue {
        let query = pair.string("query") ?? ""
        var context = DetectionContext(description: pair.string("image_description") ?? "")
        context.elementTerms = (try? pair.elementTerms().terms) ?? []
        let verdict = lexical.judge(query, context: context)
        var fields: [String: JSONValue] = [
            "id": .string(pair.id), "position": .int(Int64(position)), "query": .string(query),
            "image_description": pair["image_description"] ?? .null, "safety_reason": pair["safety_reason"] ?? .null,
            "category": pair["category"] ?? .null, "sub_category": pair["sub_category"] ?? .null, "source": pair["source"] ?? .null,
            "harmful_query": pair["harmful_query"] ?? .null, "element": pair["element"]?["name"] ?? .null,
            "detection": pair["detection"] ?? .null, "filter": pair["filter"] ?? .null, "categorise": pair["categorise"] ?? .null,
            "duplicates": .array(duplicates), "path": pair["path"] ?? .null,
            "evidence": .array(verdict.evidence.filter { !$0.span.isEmpty }.map { ["span": .string($0.span), "term": .string($0.term), "source": .string($0.source)] }),
        ]
        if let image = pair["image"]?.objectValue, let blob = image["blob"]?.stringValue, let format = image["format"]?.stringValue {
            fields["image"] = .string("/image/\(blob).\(format)")
            fields["image_source"] = image["source"] ?? image["method"] ?? .null
        }
        return .object(fields)
    }

    /// The pairs as the app shows them.
    public var pairsJSON: JSONValue { .array(views) }

    /// An image's bytes, for a blob name as the app asks for it (`<hash>.<format>`).
    public func image(named name: String) throws -> (bytes: [UInt8], contentType: String)? {
        let parts = name.split(separator: ".")
        guard parts.count == 2, let hash = ContentHash(hex: String(parts[0])), let format = ImageFormat(rawValue: String(parts[1])) else { return nil }
        let path = BlobStore(folder: blobs).path(for: hash, format: format)
        guard FileSystem.exists(path) else { return nil }
        return (try FileSystem.read(path), format == .png ? "image/png" : "image/jpeg")
    }

    /// Every reviewer's current decision on every pair, the agreement, and progress counts.
    public func stateJSON(reviewer: String) throws -> JSONValue {
        let state = ReviewState(try store.load().decisions)
        var byPair: [String: JSONValue] = [:]
        var mine = 0, rejected = 0, disagreements = 0
        for pair in pairs {
            let current = state.current(pair.id)
            guard !current.isEmpty else { continue }
            if current[reviewer] != nil { mine += 1 }
            if current.values.contains(where: { $0.action == .reject }) { rejected += 1 }
            if Set(current.values.map(\.accepts)).count > 1 { disagreements += 1 }
            byPair[pair.id] = .object(current.mapValues { decision in
                var fields: [String: JSONValue] = ["decision": .string(decision.action.rawValue), "time": .string(decision.time), "id": .string(decision.id)]
                if !decision.reason.isEmpty { fields["reason"] = .string(decision.reason) }
                if decision.action == .edit { fields["query"] = .string(decision.query) }
                return .object(fields)
            })
        }
        return .object([
            "reviewer": .string(reviewer), "pairs": .int(Int64(pairs.count)), "decisions": .object(byPair),
            "reviewed_by_you": .int(Int64(mine)), "rejected": .int(Int64(rejected)), "disagreements": .int(Int64(disagreements)),
            "reviewers": JSONValue(state.reviewers), "agreement": state.agreement(over: Set(index.keys)).json,
            "last_undoable": state.lastStanding(reviewer: reviewer).map { .string($0.pair) } ?? .null,
        ])
    }

    public struct RequestError: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Records a decision from the app: `accept`, `reject` (with a reason) or `edit` (with the
    /// new query). An edit is judged by the detector at once, so the reviewer sees whether it
    /// still names the risk; the export judges it again.
    public func decide(_ body: JSONValue) throws -> JSONValue {
        let reviewer = try field(body, "reviewer")
        do { try ReviewDecision.checkReviewer(reviewer) } catch let error as RecordError { throw RequestError(description: error.description) }
        let pairID = try field(body, "pair")
        guard let position = index[pairID] else { throw RequestError(description: "no pair \(pairID) among the \(pairs.count) pairs under review") }
        let decisionName = try field(body, "decision")
        guard let action = ReviewDecision.Action(rawValue: decisionName), action != .undo else {
            throw RequestError(description: "'decision' must be accept, reject or edit, found '\(decisionName)'")
        }
        let original = pairs[position].string("query") ?? ""
        var decision = ReviewDecision(pair: pairID, reviewer: reviewer, action: action, reason: body["reason"]?.stringValue ?? "")
        var verdict: JSONValue = .null
        if action == .edit {
            let query = (body["query"]?.stringValue ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            guard !query.isEmpty else { throw RequestError(description: "an edit needs the new query") }
            guard query != original else { throw RequestError(description: "the edited query is the same as the original: accept it instead") }
            decision.query = query
            decision.originalQuery = original
            verdict = judge(pairs[position], query: query)
        }
        try store.append([decision])
        return .object(["saved": .string(decision.id), "detector": verdict, "state": try stateJSON(reviewer: reviewer)])
    }

    /// Takes back the reviewer's latest standing decision.
    public func undo(_ body: JSONValue) throws -> JSONValue {
        let reviewer = try field(body, "reviewer")
        let state = ReviewState(try store.load().decisions)
        guard let last = state.lastStanding(reviewer: reviewer) else { throw RequestError(description: "\(reviewer) has nothing to undo") }
        try store.append([ReviewDecision(pair: last.pair, reviewer: reviewer, action: .undo, undoes: last.id)])
        return .object(["undone": .string(last.pair), "state": try stateJSON(reviewer: reviewer)])
    }

    /// The detector's verdict on an edited query, as the app shows it.
    func judge(_ pair: Record, query: String) -> JSONValue {
        let probe = pair.derived { fields in
            fields["kind"] = "query"
            fields["query"] = .string(query)
        }
        let outputs = detector.withLock { detector -> [StageOutput]? in
            guard detector != nil else { return nil }
            return try? detector!.process(probe) + detector!.finish()
        }
        guard let output = outputs?.first else { return .null }
        switch output {
        case .record: return ["verdict": "clean"]
        case .reject(_, let reason, let detail, _): return ["verdict": .string(reason), "detail": .string(detail)]
        }
    }

    private func field(_ body: JSONValue, _ key: String) throws -> String {
        guard let value = body[key]?.stringValue, !value.isEmpty else { throw RequestError(description: "the request needs '\(key)'") }
        return value
    }
}
