import Foundation
import LeaklessCore
import LeaklessImaging
import LeaklessModels
import LeaklessNetwork

/// rewrite, model: revised queries that make a request only together with the image.
public final class ModelRewriteStage: PromptStage, @unchecked Sendable {
    let variants: Int

    public init(context: StageContext, parameters: RewriteStage.Parameters) throws {
        variants = parameters.variantsPerQuery
        try super.init(context: context, prompt: "rewrite")
    }

    public override func values(_ record: Record) throws -> [String: String] {
        try record.requireKind(["seed"])
        return ["image_description": try record.requireString("image_description"), "query": try record.requireString("query"),
                "count": String(variants)]
    }

    public override func process(_ record: Record, worker: Int) throws -> [StageOutput] {
        let harmful = try values(record)["query"]!
        switch try ask(record, worker: worker, check: { nonEmptyStrings($0["revised_queries"], field: "revised_queries", count: 1) }) {
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
