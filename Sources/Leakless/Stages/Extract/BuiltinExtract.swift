import LeaklessCore

/// extract, builtin: each harmful element of the taxonomy becomes an image description (its
/// scene) and harmful seed queries from its category's templates, chosen by a seeded shuffle.
public struct BuiltinExtractStage: RecordStage {
    let templates: [String: [String: [String]]]
    let queriesPerElement: Int
    let seed: Int64

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
    }

    public mutating func process(_ record: Record) throws -> [StageOutput] {
        try record.requireKind(["element"])
        let category = try record.requireString("category")
        let element = try record.requireObject("element")
        guard let name = element["name"]?.stringValue, let kind = element["kind"]?.stringValue,
            let scene = element["scene"]?.stringValue, let safety = element["safety"]?.stringValue
        else { throw RecordError("element needs name, kind, scene and safety") }
        guard let choices = templates[category]?[kind] else {
            return [.reject(record, reason: "no-template", detail: "stages/extract/queries.yaml has no '\(kind)' templates for '\(category)'")]
        }
        var random = SeededRandom(seed: seed, salt: record.id)
        let picked = choices.shuffled(using: &random).prefix(queriesPerElement)
        return picked.map { template in
            .record(record.derived { fields in
                fields["kind"] = "seed"
                fields["source"] = "generation"
                fields["image_description"] = .string(scene)
                fields["safety_reason"] = .string(safety)
                fields["query"] = .string(template.replacingOccurrences(of: "{element}", with: name))
                fields["template"] = .string(template)
                fields.removeValue(forKey: "definition")
            })
        }
    }
}
