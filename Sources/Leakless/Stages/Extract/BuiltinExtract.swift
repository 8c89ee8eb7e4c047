import LeaklessCore

/// extract, builtin. Generation: each harmful element of the taxonomy becomes an image
/// description (its scene) and harmful seed queries from its category's templates, chosen by a
/// seeded shuffle (a category without templates takes the `default` ones). Perception: an
/// image's caption is its description; the harmful element nearest to the caption (the builtin
/// categoriser) gives its category and, above the threshold, the same templates; an image
/// nearer to nothing harmful is rejected (`no-risk-seen`).
public struct BuiltinExtractStage: RecordStage {
    let templates: [String: [String: [String]]]
    let queriesPerElement: Int
    let seed: Int64
    let perception: Perception?

    public init(context: StageContext, parameters: ExtractStage.Parameters) throws {
        let path = context.template("queries.yaml")
        let document = try YAMLDocument.load(path: path)
        var templates: [String: [String: [String]]] = [:]
        for category in document.entries ?? [] {
            for kind in category.value.entries ?? [] {
                guard let list = kind.value.json.stringArray, !list.isEmpty,
                    list.allSatisfy({ $0.contains("{element}") })
                else {
                    throw LocatedError(path: path, line: kind.line, message: "templates must be a list of strings, each with {element}")
                }
                templates[category.key, default: [:]][kind.key] = list
            }
        }
        self.templates = templates
        queriesPerElement = parameters.queriesPerElement
        seed = parameters.seed
        perception = parameters.perceives ? try Perception(parameters: parameters, context: context, requireCaptions: true) : nil
    }

    func picked(_ category: String, _ kind: String, salt: String) -> [String]? {
        guard let choices = templates[category]?[kind] ?? templates["default"]?[kind] else { return nil }
        var random = SeededRandom(seed: seed, salt: salt)
        return Array(choices.shuffled(using: &random).prefix(queriesPerElement))
    }

    public mutating func process(_ record: Record) throws -> [StageOutput] {
        try record.requireKind(["element", "collection_image"])
        if record.kind == "collection_image" { return try perceive(record) }
        let category = try record.requireString("category")
        let element = try record.requireObject("element")
        guard let name = element["name"]?.stringValue, let kind = element["kind"]?.stringValue,
            let scene = element["scene"]?.stringValue, let safety = element["safety"]?.stringValue
        else { throw RecordError("element needs name, kind, scene and safety") }
        guard let picked = picked(category, kind, salt: record.id) else {
            return [.reject(record, reason: "no-template", detail: "stages/extract/queries.yaml has no '\(kind)' templates for '\(category)'")]
        }
        return picked.map { template in
            .record(record.derived { fields in
                fields["kind"] = "seed"
                fields["path"] = "generation"
                fields["source"] = "generation"
                fields["image_description"] = .string(scene)
                fields["safety_reason"] = .string(safety)
                fields["query"] = .string(template.replacingOccurrences(of: "{element}", with: name))
                fields["template"] = .string(template)
                fields.removeValue(forKey: "definition")
            })
        }
    }

    func perceive(_ record: Record) throws -> [StageOutput] {
        guard let perception else { throw RecordError("a collection image, but 'path' is generation") }
        guard let caption = record["caption"]?.stringValue, !caption.isEmpty else {
            return [.reject(record, reason: "no-caption", detail: "\(record["file"]?.stringValue ?? "") in \(record["collection"]?.stringValue ?? "") has no caption")]
        }
        guard let match = perception.nearestElement(caption), let element = match.entry.element else {
            return [.reject(record, reason: "no-risk-seen", detail: "the taxonomy has no harmful elements to match")]
        }
        let similarity = String(format1: match.similarity, digits: 3)
        guard match.similarity >= perception.threshold else {
            return [.reject(record, reason: "no-risk-seen",
                            detail: "the caption '\(caption)' is nearest to '\(element.name)' (\(match.entry.subCategory)) at \(similarity), below \(perception.threshold)")]
        }
        guard let picked = picked(match.entry.category, element.kind, salt: record.id) else {
            return [.reject(record, reason: "no-template", detail: "stages/extract/queries.yaml has no '\(element.kind)' templates for '\(match.entry.category)'")]
        }
        let image: [String: JSONValue]
        switch try perception.image(record) {
        case .failure(let rejection): return rejection.output(record)
        case .success(let read): image = read.fields
        }
        let provenance: JSONValue = [
            "method": "builtin", "matching": .string(perception.categoriser.method), "caption": .string(caption),
            "nearest_element": .string(element.name), "similarity": .double((match.similarity * 1000).rounded() / 1000),
            "image_risk": "risky",
        ]
        return picked.map { template in
            .record(Perception.seed(record, image: image, description: caption, safety: element.safety,
                                    query: template.replacingOccurrences(of: "{element}", with: element.name), match: match,
                                    provenance: provenance, extra: ["template": .string(template), "image_risk": "risky"]))
        }
    }
}
