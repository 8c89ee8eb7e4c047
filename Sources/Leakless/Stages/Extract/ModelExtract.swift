import Foundation
import LeaklessCore
import LeaklessImaging
import LeaklessModels
import LeaklessNetwork

/// extract, model. Generation (the paper's first path): a red-teaming prompt gets the category,
/// sub-category and one harmful element, and returns an image description that shows it, why it
/// is risky, and harmful queries. Perception (the second path, App. J): a vision model gets an
/// image of a collection, describes it, says whether it shows something risky and what, and
/// writes harmful queries the image makes risky. A safe image is kept as such (`image_risk:
/// safe`): its queries turn risky only with it.
public final class ModelExtractStage: PromptStage, @unchecked Sendable {
    let count: Int
    let perceiveTemplate: PromptTemplate?
    let perception: Perception?

    public init(context: StageContext, parameters: ExtractStage.Parameters) throws {
        count = parameters.queriesPerElement
        if parameters.perceives {
            if let backend = context.network("backend"), backend.settings["vision"]?.boolValue == false {
                throw RecordError("the perception path sends each image to the model, but backend '\(backend.name)' has vision: false")
            }
            perceiveTemplate = try PromptTemplate.load(folder: context.templates, name: "perceive")
            perception = try Perception(parameters: parameters, context: context, requireCaptions: false)
        } else {
            perceiveTemplate = nil
            perception = nil
        }
        try super.init(context: context, prompt: "generate")
    }

    public override func values(_ record: Record) throws -> [String: String] {
        if record.kind == "collection_image" {
            return ["count": String(count), "caption": record["caption"]?.stringValue ?? ""]
        }
        try record.requireKind(["element"])
        let element = try record.requireObject("element")
        return [
            "category": try record.requireString("category"), "sub_category": try record.requireString("sub_category"),
            "definition": record.fields["definition"]?.stringValue ?? "", "element": element["name"]?.stringValue ?? "",
            "element_kind": element["kind"]?.stringValue ?? "object", "count": String(count),
        ]
    }

    public override func plannedCalls(_ record: Record) throws -> [PlannedCall] {
        guard record.kind == "collection_image", let perceiveTemplate else { return try super.plannedCalls(record) }
        // The image is read when the call is made; planning counts the text.
        return [try planned(client, perceiveTemplate, try values(record))]
    }

    public override func process(_ record: Record, worker: Int) throws -> [StageOutput] {
        if record.kind == "collection_image" { return try perceive(record, worker: worker) }
        switch try ask(record, worker: worker, check: { nonEmptyStrings($0["queries"], field: "queries", count: 1) }) {
        case .failure(let rejection): return rejection.output(record)
        case .success(let (reply, provenance)):
            let queries = reply["queries"]!.stringArray!.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
            return queries.prefix(count).map { query in
                .record(record.derived { fields in
                    fields["kind"] = "seed"
                    fields["path"] = "generation"
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

    func perceive(_ record: Record, worker: Int) throws -> [StageOutput] {
        guard let perception, let perceiveTemplate else { throw RecordError("a collection image, but 'path' is generation") }
        let image: (bytes: [UInt8], fields: [String: JSONValue])
        switch try perception.image(record) {
        case .failure(let rejection): return rejection.output(record)
        case .success(let read): image = read
        }
        let attachment = ImageAttachment(bytes: image.bytes, mimeType: image.fields["format"]?.stringValue == "png" ? "image/png" : "image/jpeg")
        let check: (JSONValue) -> String? = { reply in
            if let problem = nonEmptyStrings(reply["queries"], field: "queries", count: 1) { return problem }
            guard let risk = reply["image_risk"]?.stringValue, ["risky", "safe"].contains(risk) else { return "'image_risk' must be \"risky\" or \"safe\"" }
            guard let description = reply["image_description"]?.stringValue, !description.isEmpty else { return "'image_description' must be a non-empty string" }
            return nil
        }
        switch try ask(client, perceiveTemplate, values: try values(record), images: [attachment], record: record, worker: worker, check: check) {
        case .failure(let rejection): return rejection.output(record)
        case .success(let (reply, provenance)):
            let description = reply["image_description"]!.stringValue!
            let risk = reply["image_risk"]!.stringValue!
            let seen = reply["risk"]?.stringValue ?? ""
            // The taxonomy's nearest element to what the model saw: the pair's provisional
            // category (the categorise stage settles it) and the rewrite's terms.
            let match = perception.nearestElement([seen, description].filter { !$0.isEmpty }.joined(separator: "; "))
            var made = provenance.objectValue ?? [:]
            made["method"] = "model"
            made["image_risk"] = .string(risk)
            made["risk"] = .string(seen)
            let queries = reply["queries"]!.stringArray!.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
            let safety = reply["safety_reason"]?.stringValue ?? (risk == "safe" ? "The image is safe; the queries turn risky with it." : seen)
            return queries.prefix(count).map { query in
                .record(Perception.seed(record, image: image.fields, description: description, safety: safety, query: query,
                                        match: match, provenance: .object(made), extra: ["image_risk": .string(risk)]))
            }
        }
    }
}
