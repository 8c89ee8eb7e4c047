import Foundation
import LeaklessCore
import LeaklessImaging
import LeaklessModels
import LeaklessNetwork

/// extract, model: the paper's generation path. A red-teaming prompt gets the category,
/// sub-category and one harmful element, and returns an image description that shows it, why
/// it is risky, and harmful queries.
public final class ModelExtractStage: PromptStage, @unchecked Sendable {
    let count: Int

    public init(context: StageContext, parameters: ExtractStage.Parameters) throws {
        count = parameters.queriesPerElement
        try super.init(context: context, prompt: "generate")
    }

    public override func values(_ record: Record) throws -> [String: String] {
        try record.requireKind(["element"])
        let element = try record.requireObject("element")
        return [
            "category": try record.requireString("category"), "sub_category": try record.requireString("sub_category"),
            "definition": record.fields["definition"]?.stringValue ?? "", "element": element["name"]?.stringValue ?? "",
            "element_kind": element["kind"]?.stringValue ?? "object", "count": String(count),
        ]
    }

    public override func process(_ record: Record, worker: Int) throws -> [StageOutput] {
        switch try ask(record, worker: worker, check: { nonEmptyStrings($0["queries"], field: "queries", count: 1) }) {
        case .failure(let rejection): return rejection.output(record)
        case .success(let (reply, provenance)):
            let queries = reply["queries"]!.stringArray!.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
            return queries.prefix(count).map { query in
                .record(record.derived { fields in
                    fields["kind"] = "seed"
                    fields["source"] = "generation"
                    fields["image_description"] = reply["image_description"]!
                    fields["safety_reason"] = reply["safety_reason"]!
                    fields["query"] = .string(query)
                    fields["extract"] = provenance
                    fields.removeValue(forKey: "definition")
                })
            }
        }
    }
}
