import Foundation
import LeaklessCore
import LeaklessImaging
import LeaklessModels
import LeaklessNetwork

/// detect, model: the LLM VSIL detector. Keeps a revised query when the text alone is not
/// harmful, the text with the image is, and the revision kept its meaning.
struct ModelDetect: ModelStep {
    let prompt: Prompt

    init(_ calls: ModelCalls) throws {
        prompt = try calls.prompt("judge")
    }

    func values(_ record: Record) throws -> [String: String] {
        try record.requireKind(["query"])
        return [
            "image_description": try record.requireString("image_description"), "query": try record.requireString("query"),
            "harmful_query": record.fields["harmful_query"]?.stringValue ?? "",
        ]
    }

    func plannedCalls(_ record: Record) throws -> [PlannedCall] { [try prompt.planned(try values(record))] }

    func process(_ record: Record, worker: Int) throws -> [StageOutput] {
        switch try prompt.ask(try values(record), worker: worker) {
        case .failure(let rejection): return rejection.output(record)
        case .success(let (judgement, provenance)):
            let reason = judgement["reason"]?.stringValue ?? ""
            if judgement["text_harmful"]?.boolValue == true {
                return [.reject(record, reason: "harmful-alone", detail: "the query alone is an unsafe request: \(reason)")]
            }
            if judgement["meaningful"]?.boolValue == false {
                return [.reject(record, reason: "meaningless", detail: "the revision lost the request's meaning: \(reason)")]
            }
            if judgement["pair_harmful"]?.boolValue == false {
                return [.reject(record, reason: "pair-not-harmful", detail: "the query with the image is not risky: \(reason)")]
            }
            return [.record(record.derived { fields in
                var detection = provenance.objectValue ?? [:]
                detection["detector"] = "llm-judge"
                detection["verdict"] = "clean"
                detection["judgement"] = judgement
                fields["detection"] = .object(detection)
            })]
        }
    }
}
