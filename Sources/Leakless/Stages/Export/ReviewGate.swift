import LeaklessCore

/// What the export requires of human review (`review:` under the export stage in pipeline.yaml).
public struct ReviewPolicy: Codable, Sendable, Equatable {
    /// `none`: decisions are not read; `not_rejected`: a pair a reviewer rejected is left out;
    /// `accepted`: a pair needs `min_reviewers` acceptances and no rejection.
    @Parameter("require", .choice(choices), default: "none",
               "none: decisions are not read; not_rejected: pairs a reviewer rejected are left out; accepted: pairs need min_reviewers acceptances and no rejection")
    public var require: String
    @Parameter("min_reviewers", .integer(1...1_000), default: 1, "acceptances (accept or edit) a pair needs under require: accepted")
    public var minReviewers: Int

    /// The defaults.
    public init() {}

    public var readsDecisions: Bool { require != "none" }

    static let choices = ["none", "not_rejected", "accepted"]
    /// The export's `review:` mapping: the settings declared above, their defaults its default.
    static let parameter = StageParameter(
        "review", .mapping(StageParameter.declared(in: ReviewPolicy())), default: (try? JSONValue.encoding(ReviewPolicy())) ?? .null,
        "the human review (leakless review) the export honours; an edited query is judged by the detect stage's detector again")
}

/// The export's reading of the review store: which pairs go out, with which query, and the
/// counts and agreement for the card. Each reviewer's current decision counts (undo takes one
/// back); the latest standing edit gives the query, which must pass the detector again.
final class ReviewGate {
    let policy: ReviewPolicy
    let state: ReviewState
    private let detector: (any RecordStage)?
    private var seen: Set<String> = []
    private(set) var summary = ReviewSummary()

    init(policy: ReviewPolicy, context: StageContext) throws {
        self.policy = policy
        guard let log = context.given[ExportStage.reviewDecisions], let store = log["path"]?.stringValue else {
            throw RecordError("the export honours review decisions, but was not told where the review store is")
        }
        let loaded = try ReviewStore(path: store).load(bytes: log["bytes"]?.intValue.map { Int($0) })
        state = ReviewState(loaded.decisions)
        if let parameters = context.given[ExportStage.detectSettings]?.objectValue {
            detector = try ExportStage.editJudge(parameters, origin: "the \(ExportStage.editJudgeStage) stage's parameters")?.make()
        } else {
            detector = nil
        }
        summary.policy = policy
        summary.decisions = loaded.decisions.count
    }

    enum Outcome {
        case keep(Record)
        case leaveOut(reason: String, detail: String)
    }

    func decide(_ record: Record) throws -> Outcome {
        seen.insert(record.id)
        let current = state.current(record.id)
        if !current.isEmpty { summary.reviewed += 1 }
        let rejections = current.filter { $0.value.action == .reject }.sorted { $0.key < $1.key }
        if let (reviewer, decision) = rejections.first {
            summary.rejected += 1
            let reason = decision.reason.isEmpty ? "no reason given" : decision.reason
            let others = rejections.count > 1 ? " (and \(rejections.count - 1) other reviewer\(rejections.count == 2 ? "" : "s"))" : ""
            return .leaveOut(reason: "review-rejected", detail: "rejected by \(reviewer)\(others): \(reason)")
        }
        let acceptedBy = current.filter { $0.value.accepts }.keys.sorted()
        if policy.require == "accepted" && acceptedBy.count < policy.minReviewers {
            summary.unaccepted += 1
            return .leaveOut(reason: "review-unaccepted", detail: "accepted by \(acceptedBy.count) reviewer\(acceptedBy.count == 1 ? "" : "s"), \(policy.minReviewers) needed")
        }
        guard !acceptedBy.isEmpty else { return .keep(record) }
        var review: [String: JSONValue] = ["accepted_by": JSONValue(acceptedBy), "require": .string(policy.require)]
        var query = try record.requireString("query")
        if let edit = state.editedQuery(record.id) {
            summary.edited += 1
            let detection: JSONValue
            switch try judge(record, edited: edit.query) {
            case .failure(let leak):
                summary.editsLeaking += 1
                return .leaveOut(reason: "review-edit-leaks", detail: "the query \(edit.reviewer) wrote was rejected by the detector (\(leak.reason)): \(leak.detail)")
            case .success(let verdict):
                detection = verdict
            }
            review["edit"] = .object([
                "reviewer": .string(edit.reviewer), "original_query": .string(query), "query": .string(edit.query),
                "time": .string(edit.time), "decision": .string(edit.id), "detection": detection,
            ])
            query = edit.query
        }
        summary.accepted += 1
        let kept = record.derived { fields in
            fields["query"] = .string(query)
            fields["review"] = .object(review)
        }
        return .keep(kept)
    }

    struct Leak: Error {
        let reason: String
        let detail: String
    }

    /// The detector's verdict on an edited query: its detection when clean, else what it found.
    private func judge(_ record: Record, edited: String) throws -> Result<JSONValue, Leak> {
        guard var detector else { return .success("not judged: no detector") }
        let probe = record.derived { fields in
            fields["kind"] = "query"
            fields["query"] = .string(edited)
        }
        for output in try detector.process(probe) + detector.finish() {
            switch output {
            case .reject(_, let reason, let detail, _): return .failure(Leak(reason: reason, detail: detail))
            case .record(let judged): return .success(judged["detection"] ?? .null)
            }
        }
        return .success(.null)
    }

    func finish() {
        summary.agreement = state.agreement(over: seen)
        summary.reviewers = state.reviewers
    }
}

/// The review's counts for the card and the stats.
struct ReviewSummary {
    var policy = ReviewPolicy()
    var decisions = 0
    var reviewed = 0
    var accepted = 0
    var rejected = 0
    var unaccepted = 0
    var edited = 0
    var editsLeaking = 0
    var reviewers: [String] = []
    var agreement: ReviewAgreement?

    var json: JSONValue {
        .object([
            "require": .string(policy.require), "min_reviewers": .int(Int64(policy.minReviewers)),
            "decisions": .int(Int64(decisions)), "reviewed_pairs": .int(Int64(reviewed)), "accepted": .int(Int64(accepted)),
            "left_out_rejected": .int(Int64(rejected)), "left_out_unaccepted": .int(Int64(unaccepted)),
            "edited": .int(Int64(edited)), "left_out_edit_leaks": .int(Int64(editsLeaking)), "reviewers": JSONValue(reviewers),
            "agreement": agreement?.json ?? .null,
        ])
    }

    func markdown() -> [String] {
        let rule = policy.require == "accepted"
            ? "a pair is published when at least \(policy.minReviewers) reviewer\(policy.minReviewers == 1 ? "" : "s") accepted it (an edit accepts the edited pair) and none rejected it"
            : "a pair a reviewer rejected is left out; pairs nobody reviewed are published"
        var lines = [
            "", "## Human review", "",
            "Reviewed with `leakless review`: \(rule). Edited queries were judged by the VSIL detector again before export; the original and the edit are in `provenance.jsonl`.",
            "", "| | pairs |", "|---|---|",
            "| reviewed | \(reviewed) |", "| published as accepted | \(accepted) |", "| of which with an edited query | \(edited - editsLeaking) |",
            "| left out: rejected by a reviewer | \(rejected) |",
        ]
        if policy.require == "accepted" { lines.append("| left out: too few acceptances | \(unaccepted) |") }
        lines.append("| left out: the edited query names the risk | \(editsLeaking) |")
        lines += ["", "Reviewers: \(reviewers.isEmpty ? "none" : reviewers.joined(separator: ", ")) (\(decisions) decisions recorded). Agreement: \(agreement?.summary ?? "not measured")."]
        return lines
    }
}
