import Foundation
import LeaklessCore
import LeaklessModels

/// categorise, model: the pair and the taxonomy's definitions go to a chat model, which names
/// one category and sub-category of the list (anything else is asked again).
struct ModelCategorise: ModelStep {
    let prompt: Prompt
    let definitions: String
    let known: Set<String>

    init(_ calls: ModelCalls, taxonomy: Taxonomy) throws {
        var lines: [String] = []
        var known = Set<String>()
        for category in taxonomy.categories {
            for sub in category.subCategories {
                lines.append("- \(category.name) / \(sub.name): \(sub.definition)")
                known.insert("\(category.name)\n\(sub.name)")
            }
        }
        definitions = lines.joined(separator: "\n")
        self.known = known
        // The reply can only name the taxonomy's categories and sub-categories.
        var subCategories: [String] = []
        for category in taxonomy.categories {
            for sub in category.subCategories where !subCategories.contains(sub.name) { subCategories.append(sub.name) }
        }
        prompt = try calls.prompt("categorise", narrowing: [
            "category": ["enum": JSONValue(taxonomy.categories.map(\.name))],
            "sub_category": ["enum": JSONValue(subCategories)],
        ])
    }

    func values(_ record: Record) throws -> [String: String] {
        try record.requireKind(["pair"])
        let perceived = record["path"]?.stringValue == "perception"
        return [
            "query": try record.requireString("query"), "image_description": record["image_description"]?.stringValue ?? "",
            "definitions": definitions,
            "category": perceived ? "" : record["category"]?.stringValue ?? "",
            "sub_category": perceived ? "" : record["sub_category"]?.stringValue ?? "",
        ]
    }

    func plannedCalls(_ record: Record) throws -> [PlannedCall] { [try prompt.planned(try values(record))] }

    func process(_ record: Record, worker: Int) throws -> [StageOutput] {
        let known = self.known
        let check: (JSONValue) -> String? = { reply in
            guard let category = reply["category"]?.stringValue, let sub = reply["sub_category"]?.stringValue else {
                return "'category' and 'sub_category' must be strings"
            }
            return known.contains("\(category)\n\(sub)") ? nil : "'\(category)' / '\(sub)' is not a category and sub-category of the list"
        }
        switch try prompt.ask(try values(record), worker: worker, check: check) {
        case .failure(let rejection): return rejection.output(record)
        case .success(let (reply, provenance)):
            var made = provenance.objectValue ?? [:]
            made["method"] = "model"
            made["reason"] = reply["reason"] ?? ""
            return [.record(CategoriseStage.decide(record, category: reply["category"]!.stringValue!,
                                                   subCategory: reply["sub_category"]!.stringValue!, provenance: made))]
        }
    }
}
