import Foundation
import LeaklessCore

/// Harmful elements for new or short sub-categories (the paper's "harmful elements": risky
/// objects and risky scenarios, each with the words that name it), listed by a chat model or by
/// the builtin, deduplicated against the elements already there, and written as a new taxonomy
/// file.
public enum TaxonomyExpansion {
    /// A sub-category to add: "Category / Sub-category: definition".
    public static func parseAddition(_ text: String) throws -> (category: String, sub: String, definition: String) {
        guard let colon = text.firstIndex(of: ":"), let slash = text[..<colon].firstIndex(of: "/") else {
            throw RecordError("'--add' takes 'Category / Sub-category: one-line definition', found '\(text)'")
        }
        let category = text[..<slash].trimmingCharacters(in: .whitespaces)
        let sub = text[text.index(after: slash)..<colon].trimmingCharacters(in: .whitespaces)
        let definition = text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        guard !category.isEmpty, !sub.isEmpty, !definition.isEmpty else {
            throw RecordError("'--add' needs a category, a sub-category and a definition, found '\(text)'")
        }
        return (category, sub, definition)
    }

    /// The taxonomy with the additions appended (a new sub-category of an existing category goes
    /// under it).
    public static func adding(_ additions: [(category: String, sub: String, definition: String)], to taxonomy: Taxonomy) throws -> Taxonomy {
        var categories = taxonomy.categories
        for addition in additions {
            let sub = Taxonomy.SubCategory(name: addition.sub, definition: addition.definition, elements: [])
            if let index = categories.firstIndex(where: { $0.name == addition.category }) {
                guard !categories[index].subCategories.contains(where: { $0.name == addition.sub }) else {
                    throw RecordError("'\(addition.category) / \(addition.sub)' is already in the taxonomy")
                }
                categories[index] = Taxonomy.Category(name: addition.category, subCategories: categories[index].subCategories + [sub])
            } else {
                categories.append(Taxonomy.Category(name: addition.category, subCategories: [sub]))
            }
        }
        return Taxonomy(version: taxonomy.version, categories: categories)
    }

    /// Lowercased words without articles: "A Loaded Handgun" and "loaded handgun" are one name.
    static func normalised(_ name: String) -> String {
        Text.tokens(name).map(\.stem).filter { !["a", "an", "the", "of", "some"].contains($0) }.joined(separator: " ")
    }

    /// `candidates` without those that repeat an existing element or an earlier candidate: the
    /// same normalised name, or text (name and terms) whose TF-IDF cosine with one is `limit` or more.
    public static func deduplicated(_ candidates: [Taxonomy.Element], against existing: [Taxonomy.Element], stopStems: Set<String>,
                                    limit: Double = 0.8) -> (kept: [Taxonomy.Element], dropped: [(Taxonomy.Element, String)]) {
        var kept: [Taxonomy.Element] = []
        var dropped: [(Taxonomy.Element, String)] = []
        func text(_ element: Taxonomy.Element) -> String { ([element.name] + element.terms).joined(separator: " ") }
        for candidate in candidates {
            let known = existing + kept
            let name = normalised(candidate.name)
            if let same = known.first(where: { normalised($0.name) == name }) {
                dropped.append((candidate, "the same name as '\(same.name)'"))
                continue
            }
            if !known.isEmpty {
                let scores = TFIDFMatcher(captions: known.map(text), stopStems: stopStems).scores(text(candidate))
                if let best = scores.indices.max(by: { scores[$0] < scores[$1] }), Double(scores[best]) >= limit {
                    dropped.append((candidate, "near '\(known[best].name)' (similarity \(String(format1: Double(scores[best]), digits: 2)))"))
                    continue
                }
            }
            kept.append(candidate)
        }
        return (kept, dropped)
    }

    /// The builtin lister: the things a definition names, one element each. A definition's list
    /// ("... such as online casinos, slot machines and betting slips") is split at commas,
    /// semicolons, "and" and "or"; short phrases are objects, longer ones (or ones with a verb
    /// ending in -ing) scenarios.
    public static func builtinElements(category: String, sub: Taxonomy.SubCategory, stopStems: Set<String>) -> [Taxonomy.Element] {
        var text = sub.definition
        for marker in [" such as ", " like ", " including ", ": ", " e.g. ", " for example "] {
            if let range = text.range(of: marker, options: .caseInsensitive) { text = String(text[range.upperBound...]); break }
        }
        text = text.trimmingCharacters(in: CharacterSet(charactersIn: " ."))
        var phrases: [String] = []
        for part in text.components(separatedBy: CharacterSet(charactersIn: ",;")) {
            for piece in part.components(separatedBy: " and ").flatMap({ $0.components(separatedBy: " or ") }) {
                var phrase = piece.trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: ".")))
                for lead in ["and ", "or ", "etc"] where phrase.lowercased().hasPrefix(lead) { phrase = String(phrase.dropFirst(lead.count)) }
                let words = Text.tokens(phrase).filter { !stopStems.contains($0.stem) }
                if !words.isEmpty && phrase.count <= 60 { phrases.append(phrase) }
            }
        }
        return phrases.map { phrase in
            let words = phrase.split(separator: " ")
            let scenario = words.count >= 4 || words.contains { $0.count > 4 && $0.lowercased().hasSuffix("ing") }
            let content = Text.tokens(phrase).filter { !stopStems.contains($0.stem) }.map(\.text)
            var terms = [phrase.lowercased()]
            for word in content.reversed() where word.count > 3 && !terms.contains(word.lowercased()) { terms.append(word.lowercased()) }
            return Taxonomy.Element(
                name: phrase, kind: scenario ? "scenario" : "object", terms: terms,
                refer: defaultRefer(scenario ? "scenario" : "object"),
                scene: "A realistic photograph that clearly shows \(phrase).",
                safety: "\(sub.name) (\(category)): \(sub.definition)", line: 0)
        }
    }

    /// The taxonomy as YAML, elements written with JSON-quoted strings (valid YAML) under a header.
    public static func yaml(_ taxonomy: Taxonomy, header: [String]) -> String {
        func q(_ text: String) -> String { JSONWriter.canonical(.string(text)) }
        func list(_ items: [String]) -> String { "[" + items.map(q).joined(separator: ", ") + "]" }
        var lines = header.map { "# " + $0 }
        lines.append("version: \(q(taxonomy.version))")
        lines.append("categories:")
        for category in taxonomy.categories {
            lines.append("  - name: \(q(category.name))")
            lines.append("    sub_categories:")
            for sub in category.subCategories {
                lines.append("      - name: \(q(sub.name))")
                lines.append("        definition: \(q(sub.definition))")
                if sub.elements.isEmpty {
                    lines.append("        elements: []")
                    continue
                }
                lines.append("        elements:")
                for element in sub.elements {
                    lines.append("          - name: \(q(element.name))")
                    lines.append("            kind: \(element.kind)")
                    lines.append("            terms: \(list(element.terms))")
                    lines.append("            refer: \(list(element.refer))")
                    lines.append("            scene: \(q(element.scene))")
                    lines.append("            safety: \(q(element.safety))")
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// An element from a model's reply entry, or why it is not one.
    static func element(_ value: JSONValue, sub: Taxonomy.SubCategory, category: String) -> Taxonomy.Element? {
        guard let name = value["name"]?.stringValue?.trimmingCharacters(in: .whitespaces), !name.isEmpty,
            let kind = value["kind"]?.stringValue, Taxonomy.elementKinds.contains(kind),
            let terms = value["terms"]?.stringArray?.filter({ !$0.isEmpty }), !terms.isEmpty
        else { return nil }
        let refer = value["refer"]?.stringArray?.filter { !$0.isEmpty } ?? []
        return Taxonomy.Element(
            name: name, kind: kind, terms: terms, refer: refer.isEmpty ? defaultRefer(kind) : refer,
            scene: value["scene"]?.stringValue ?? "A realistic photograph that clearly shows \(name).",
            safety: value["safety"]?.stringValue ?? "\(sub.name) (\(category)): \(sub.definition)", line: 0)
    }

    /// Phrases that point at the image instead of naming an element of this kind.
    static func defaultRefer(_ kind: String) -> [String] {
        kind == "object" ? ["this item", "the object shown", "this thing"] : ["this situation", "what is shown here", "the scene in the picture"]
    }
}

/// The model lister: one prompt per sub-category that needs elements.
struct ExpandElements: ModelStep {
    let prompt: Prompt

    init(_ calls: ModelCalls) throws {
        prompt = try calls.prompt("elements")
    }

    func values(_ record: Record) throws -> [String: String] {
        [
            "category": try record.requireString("category"), "sub_category": try record.requireString("sub_category"),
            "definition": try record.requireString("definition"), "count": String(record["count"]?.intValue ?? 4),
            "existing": (record["existing"]?.stringArray ?? []).joined(separator: "; "),
        ]
    }

    func plannedCalls(_ record: Record) throws -> [PlannedCall] { [try prompt.planned(try values(record))] }

    func process(_ record: Record, worker: Int) throws -> [StageOutput] {
        let check: (JSONValue) -> String? = { reply in
            guard let elements = reply["elements"]?.arrayValue, !elements.isEmpty else { return "'elements' must be a non-empty list" }
            let placeholder = Taxonomy.SubCategory(name: "", definition: "", elements: [])
            for (index, element) in elements.enumerated() where TaxonomyExpansion.element(element, sub: placeholder, category: "") == nil {
                return "element \(index + 1) needs a name, kind (object or scenario) and terms"
            }
            return nil
        }
        switch try prompt.ask(try values(record), worker: worker, check: check) {
        case .failure(let rejection): return rejection.output(record)
        case .success(let (reply, provenance)):
            return [.record(record.derived { fields in
                fields["elements"] = reply["elements"]!
                fields["provenance"] = provenance
            })]
        }
    }

}

extension TaxonomyExpansion {
    public struct Outcome {
        public let taxonomy: Taxonomy
        public let yaml: String
        /// Per sub-category: elements added and dropped as duplicates (with why).
        public let report: [String]
    }

    /// Every sub-category with fewer than `minimum` elements gets more, from the model `backend`
    /// (a chat backend) or the builtin lister (nil); the result is checked by reading it back.
    public static func expand(_ taxonomy: Taxonomy, minimum: Int, backend: BackendConfig?, templates: String, cache: String,
                              work: String, stopStems: Set<String>, date: String) throws -> Outcome {
        var needs: [(category: String, sub: Taxonomy.SubCategory)] = []
        for category in taxonomy.categories {
            for sub in category.subCategories where sub.elements.count < minimum { needs.append((category.name, sub)) }
        }
        var listed: [String: [Taxonomy.Element]] = [:]
        var source = "builtin (the phrases each definition names)"
        var failures: [String] = []
        if let backend {
            let records = needs.enumerated().map { index, need in
                Record([
                    "kind": "sub_category", "category": .string(need.category), "sub_category": .string(need.sub.name),
                    "definition": .string(need.sub.definition), "count": .int(Int64(minimum - need.sub.elements.count)),
                    "existing": JSONValue(need.sub.elements.map(\.name)), "index": .int(Int64(index)),
                ])
            }
            let context = StageContext(templates: templates, blobs: FileSystem.join(work, "blobs"), backends: ["backend": backend], cache: cache)
            let calls = try ModelCalls(context, roles: ["backend"])
            let step = try ExpandElements(calls)
            let (done, rejected) = try ModelBatch.run(records, stage: ModelStage(calls, step: step), name: "taxonomy-expand")
            for record in done {
                guard let index = record["index"]?.intValue else { continue }
                let need = needs[Int(index)]
                listed["\(need.category)\n\(need.sub.name)"] = (record["elements"]?.arrayValue ?? []).compactMap { element($0, sub: need.sub, category: need.category) }
            }
            failures = rejected.map { "\($0.record["category"]?.stringValue ?? "") / \($0.record["sub_category"]?.stringValue ?? ""): \($0.why)" }
            source = "model '\(backend.typed.model)' of backend '\(backend.name)', template elements.prompt \(step.prompt.template.hash.hex)"
        } else {
            for need in needs {
                listed["\(need.category)\n\(need.sub.name)"] = builtinElements(category: need.category, sub: need.sub, stopStems: stopStems)
            }
        }
        var report: [String] = []
        let all = taxonomy.categories.flatMap { $0.subCategories.flatMap(\.elements) }
        var added: [Taxonomy.Element] = []
        let categories = taxonomy.categories.map { category in
            Taxonomy.Category(name: category.name, subCategories: category.subCategories.map { sub in
                guard let candidates = listed["\(category.name)\n\(sub.name)"] else { return sub }
                let (kept, dropped) = deduplicated(candidates, against: all + added, stopStems: stopStems)
                let take = Array(kept.prefix(max(0, minimum - sub.elements.count)))
                added += take
                report.append("\(category.name) / \(sub.name): \(take.count) added (\(take.map(\.name).joined(separator: ", ")))"
                              + (dropped.isEmpty ? "" : "; dropped as duplicates: " + dropped.map { "'\($0.0.name)' (\($0.1))" }.joined(separator: ", ")))
                return Taxonomy.SubCategory(name: sub.name, definition: sub.definition, elements: sub.elements + take)
            })
        }
        report += failures.map { "not listed: \($0)" }
        let expanded = Taxonomy(version: taxonomy.version, categories: categories)
        let text = yaml(expanded, header: [
            "Written by leakless taxonomy expand on \(date).",
            "Elements listed by \(source); deduplicated against the elements already there",
            "(the same normalised name, or TF-IDF similarity of name and terms of 0.8 or more).",
        ])
        // What is written must read back as a taxonomy.
        _ = try Taxonomy(document: try YAMLDocument.parse(text, path: "expanded taxonomy"), path: "expanded taxonomy")
        return Outcome(taxonomy: expanded, yaml: text, report: report)
    }
}
