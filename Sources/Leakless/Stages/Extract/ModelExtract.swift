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
struct ModelExtract: ModelStep {
    let prompt: Prompt
    let count: Int
    let perceive: Prompt?
    let perception: Perception?

    init(_ calls: ModelCalls, parameters: ExtractStage.Parameters) throws {
        count = parameters.queriesPerElement
        if parameters.perceives {
            let backend = try calls.network("backend")
            if !backend.typed.vision {
                throw RecordError("the perception path sends each image to the model, but backend '\(backend.name)' has vision: false")
            }
            perceive = try calls.prompt("perceive")
            perception = try Perception(parameters: parameters, context: calls.context, requireCaptions: false)
        } else {
            perceive = nil
            perception = nil
        }
        prompt = try calls.prompt("generate")
    }

    func values(_ record: Record) throws -> [String: String] {
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

    func plannedCalls(_ record: Record) throws -> [PlannedCall] {
        // The image is read when the call is made; planning counts the text.
        guard record.kind == "collection_image", let perceive else { return [try prompt.planned(try values(record))] }
        return [try perceive.planned(try values(record))]
    }

    func process(_ record: Record, worker: Int) throws -> [StageOutput] {
        if record.kind == "collection_image" { return try perceived(record, worker: worker) }
        switch try prompt.ask(try values(record), worker: worker, check: { nonEmptyStrings($0["queries"], field: "queries", count: 1) }) {
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

    func perceived(_ record: Record, worker: Int) throws -> [StageOutput] {
        guard let perception, let perceive else { throw RecordError("a collection image, but 'path' is generation") }
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
        switch try perceive.ask(try values(record), images: [attachment], worker: worker, check: check) {
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
