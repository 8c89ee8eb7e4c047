import Foundation
import LeaklessCore
import LeaklessImaging
import LeaklessModels
import LeaklessNetwork

/// rewrite, model: revised queries that make a request only together with the image.
struct ModelRewrite: ModelStep {
    let prompt: Prompt
    let variants: Int

    init(_ calls: ModelCalls, parameters: RewriteStage.Parameters) throws {
        variants = parameters.variantsPerQuery
        prompt = try calls.prompt("rewrite")
    }

    func values(_ record: Record) throws -> [String: String] {
        try record.requireKind(["seed"])
        return ["image_description": try record.requireString("image_description"), "query": try record.requireString("query"),
                "count": String(variants)]
    }

    func plannedCalls(_ record: Record) throws -> [PlannedCall] { [try prompt.planned(try values(record))] }

    func process(_ record: Record, worker: Int) throws -> [StageOutput] {
        let values = try values(record)
        let harmful = values["query"]!
        switch try prompt.ask(values, worker: worker, check: { nonEmptyStrings($0["revised_queries"], field: "revised_queries", count: 1) }) {
        case .failure(let rejection): return rejection.output(record)
        case .success(let (reply, provenance)):
            var seen = Set<String>()
            var outputs: [StageOutput] = []
            for (variant, query) in reply["revised_queries"]!.stringArray!.prefix(variants).enumerated() {
                let text = query.trimmingCharacters(in: .whitespacesAndNewlines)
                guard !text.isEmpty, seen.insert(Text.normalized(text)).inserted else { continue }
                outputs.append(.record(record.derived { fields in
                    fields["kind"] = "query"
                    fields["harmful_query"] = .string(harmful)
                    fields["query"] = .string(text)
                    var rewrite = provenance.objectValue ?? [:]
                    rewrite["method"] = "model"
                    rewrite["variant"] = .int(Int64(variant))
                    fields["rewrite"] = .object(rewrite)
                }))
            }
            return outputs
        }
    }
}
