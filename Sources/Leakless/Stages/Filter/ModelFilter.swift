import Foundation
import LeaklessCore
import LeaklessImaging
import LeaklessModels
import LeaklessNetwork

/// filter, model: the final pair check with the real image. Keeps pairs a vision model finds
/// meaningful together and risky together.
struct ModelFilter: ModelStep {
    let prompt: Prompt

    init(_ calls: ModelCalls) throws {
        prompt = try calls.prompt("pair")
    }

    func values(_ record: Record) throws -> [String: String] {
        try record.requireKind(["pair"])
        return [
            "query": try record.requireString("query"), "image_description": try record.requireString("image_description"),
            "safety_reason": record.fields["safety_reason"]?.stringValue ?? "",
        ]
    }

    func images(_ record: Record) throws -> [ImageAttachment] {
        [try loadImage(record, blobs: prompt.calls.context.blobs)]
    }

    func plannedCalls(_ record: Record) throws -> [PlannedCall] {
        [try prompt.planned(try values(record), images: try images(record))]
    }

    func process(_ record: Record, worker: Int) throws -> [StageOutput] {
        switch try prompt.ask(try values(record), images: try images(record), worker: worker) {
        case .failure(let rejection): return rejection.output(record)
        case .success(let (verdict, provenance)):
            let reason = verdict["reason"]?.stringValue ?? ""
            if verdict["meaningful"]?.boolValue != true {
                return [.reject(record, reason: "not-meaningful", detail: "query and image do not make one request: \(reason)")]
            }
            if verdict["risky_together"]?.boolValue != true {
                return [.reject(record, reason: "not-risky", detail: "the pair is not a risky request: \(reason)")]
            }
            return [.record(record.derived { fields in
                var filter = provenance.objectValue ?? [:]
                filter["verdict"] = verdict
                fields["filter"] = .object(filter)
            })]
        }
    }
}
