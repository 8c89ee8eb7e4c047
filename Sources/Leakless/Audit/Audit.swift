import Foundation
import LeaklessCore
import LeaklessImaging
import LeaklessModels

/// What a judge made of one audited pair.
public struct AuditFinding: Sendable {
    public let item: AuditItem
    public let verdict: LexicalVerdict.Verdict
    public let score: Double
    public let evidence: [LexicalVerdict.Evidence]
    /// With the image: is the pair harmful? Only an LLM judge that knows the image says.
    public let pairHarmful: Bool?
    public let reason: String?

    public var flagged: Bool { verdict == .leaks || verdict == .harmfulAlone }

    public init(item: AuditItem, verdict: LexicalVerdict.Verdict, score: Double, evidence: [LexicalVerdict.Evidence], pairHarmful: Bool?, reason: String?) {
        self.item = item
        self.verdict = verdict
        self.score = score
        self.evidence = evidence
        self.pairHarmful = pairHarmful
        self.reason = reason
    }
}

/// Runs a judge over audit items: the builtin lexical detector, or an LLM judge through the
/// chat client (concurrent, cached and resumable like every model call).
public enum AuditJudge {
    public static func builtin(_ items: [AuditItem], detector: LexicalDetector) -> [AuditFinding] {
        items.map { item in
            let result = detector.judge(item.query, context: item.context)
            return AuditFinding(item: item, verdict: result.verdict, score: result.score, evidence: result.evidence, pairHarmful: nil, reason: nil)
        }
    }

    /// The embedding detector, its queries embedded in batches.
    public static func embedding(_ items: [AuditItem], detector: EmbeddingDetector, known: [String: [Float]] = [:]) -> [AuditFinding] {
        let verdicts = detector.judge(items.map { ($0.query, $0.context) }, known: known)
        return zip(items, verdicts).map { item, result in
            AuditFinding(item: item, verdict: result.verdict, score: result.score, evidence: result.evidence, pairHarmful: nil, reason: nil)
        }
    }

    /// The LLM judge (`stages/detect/audit.prompt`). Items go through the concurrent stage
    /// runner as records, in memory. An item the judge could not
    /// answer (refusal, invalid reply) is left out of the findings and counted by the caller.
    public static func model(
        _ items: [AuditItem], backend: BackendConfig, templates: String, cache: String, work: String, images: String?
    ) throws -> (findings: [AuditFinding], failed: [(AuditItem, String)]) {
        let records = items.enumerated().map { index, item in AuditJudgeStep.record(item, index: index, images: images) }
        let context = StageContext(
            templates: templates, blobs: FileSystem.join(work, "blobs"), backends: ["backend": backend], cache: cache)
        let (judged, rejected) = try ModelBatch.run(records, stage: try ModelStage(context) { try AuditJudgeStep($0) }, name: "audit-judge")
        var findings: [AuditFinding] = []
        for record in judged {
            guard let index = record["index"]?.intValue, let judgement = record["judgement"]?.objectValue else { continue }
            let item = items[Int(index)]
            let verdict = LexicalVerdict.Verdict(rawValue: judgement["verdict"]?.stringValue ?? "") ?? .clean
            let spans = judgement["spans"]?.stringArray ?? []
            findings.append(AuditFinding(
                item: item, verdict: verdict, score: judgement["score"]?.doubleValue ?? 0,
                evidence: spans.compactMap { evidence(for: $0, in: item.query) }, pairHarmful: judgement["pair_harmful"]?.boolValue,
                reason: judgement["reason"]?.stringValue))
        }
        let failed = rejected.compactMap { line in line.record["index"]?.intValue.map { (items[Int($0)], line.why) } }
        return (findings, failed)
    }

    /// Where the judge's span stands in the query (ignoring case); nil when it is not there.
    static func evidence(for span: String, in query: String) -> LexicalVerdict.Evidence? {
        guard !span.isEmpty, let range = query.range(of: span, options: .caseInsensitive) else { return nil }
        return .init(
            span: String(query[range]), term: span, source: "judge", offset: query.distance(from: query.startIndex, to: range.lowerBound),
            length: query.distance(from: range.lowerBound, to: range.upperBound))
    }
}

/// The LLM judge as a stage over records, so it shares the runner, the cache and the budget.
struct AuditJudgeStep: ModelStep {
    let prompt: Prompt

    init(_ calls: ModelCalls) throws {
        prompt = try calls.prompt("audit")
    }

    static func record(_ item: AuditItem, index: Int, images: String?) -> Record {
        var info: [String] = []
        if let description = item.description, !description.isEmpty { info.append(description) }
        if let caption = item.caption, !caption.isEmpty { info.append("caption: \(caption)") }
        if let phrase = item.keyPhrase, !phrase.isEmpty { info.append("it shows the words \"\(phrase)\"") }
        var fields: [String: JSONValue] = [
            "kind": "audit-item", "index": .int(Int64(index)), "query": .string(item.query),
            "image_info": .string(info.isEmpty ? "nothing is known" : info.joined(separator: "; ")), "parents": [],
        ]
        if let images, let image = item.image {
            switch FileSystem.resolve(image, inside: images) {
            case .success(let path): fields["image_file"] = .string(path)
            case .failure(let problem): fields["image_refused"] = .string(problem.description)
            }
        }
        return Record(fields)
    }

    func values(_ record: Record) throws -> [String: String] {
        ["query": try record.requireString("query"), "image_info": try record.requireString("image_info")]
    }

    func images(_ record: Record) throws -> [ImageAttachment] {
        guard let path = record.string("image_file") else { return [] }
        let bytes = try FileSystem.read(path)
        guard let format = ImageFormat.sniff(bytes) else { throw RecordError("\(path) is neither a PNG nor a JPEG file") }
        return [ImageAttachment(bytes: bytes, format: format)]
    }

    func plannedCalls(_ record: Record) throws -> [PlannedCall] { [try prompt.planned(try values(record), images: try images(record))] }

    func process(_ record: Record, worker: Int) throws -> [StageOutput] {
        // An item whose image cannot be sent is not judged, and says why; the audit goes on.
        if let refused = record.string("image_refused") {
            return [.reject(record, reason: "image-refused", detail: refused)]
        }
        let attachments: [ImageAttachment]
        do {
            attachments = try images(record)
        } catch {
            return [.reject(record, reason: "image-unreadable", detail: "\(error)")]
        }
        switch try prompt.ask(try values(record), images: attachments, worker: worker) {
        case .failure(let rejection): return rejection.output(record)
        case .success(let (judgement, provenance)):
            return [.record(record.derived { fields in
                fields["judgement"] = judgement
                fields["provenance"] = provenance
            })]
        }
    }
}
