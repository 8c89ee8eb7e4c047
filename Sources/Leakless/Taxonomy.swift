import LeaklessCore

/// The harm taxonomy (`data/taxonomy.yaml`): categories, sub-categories, and the harmful
/// elements the extract stage turns into seed queries.
public struct Taxonomy: Sendable {
    public struct Element: Sendable {
        public let name: String
        public let kind: String
        public let terms: [String]
        public let refer: [String]
        public let scene: String
        public let safety: String
        public let line: Int

        public var json: JSONValue {
            .object([
                "name": .string(name), "kind": .string(kind), "terms": JSONValue(terms),
                "refer": JSONValue(refer), "scene": .string(scene), "safety": .string(safety),
            ])
        }
    }

    public struct SubCategory: Sendable {
        public let name: String
        public let definition: String
        public let elements: [Element]
    }

    public struct Category: Sendable {
        public let name: String
        public let subCategories: [SubCategory]
    }

    public let version: String
    public let categories: [Category]

    public static let elementKinds = ["object", "scenario"]

    public static func load(path: String) throws -> Taxonomy {
        try Taxonomy(document: try YAMLDocument.load(path: path), path: path)
    }

    public init(version: String, categories: [Category]) {
        self.version = version
        self.categories = categories
    }

    public init(document: YAMLNode, path: String) throws {
        let reader = ConfigReader(path: path)
        let top = try reader.mapping(document, "the taxonomy", keys: ["version", "categories"])
        version = try reader.string(top, "version")
        var categories: [Category] = []
        for categoryNode in try reader.list(top, "categories") {
            let category = try reader.mapping(categoryNode, "a category", keys: ["name", "sub_categories"])
            var subCategories: [SubCategory] = []
            for subNode in try reader.list(category, "sub_categories") {
                let sub = try reader.mapping(subNode, "a sub-category", keys: ["name", "definition", "elements"])
                var elements: [Element] = []
                // A new sub-category may list no elements yet (`leakless taxonomy expand` lists them).
                for elementNode in try reader.optionalList(sub, "elements") {
                    let element = try reader.mapping(
                        elementNode, "an element", keys: ["name", "kind", "terms", "refer", "scene", "safety"])
                    let kind = try reader.string(element, "kind")
                    guard Taxonomy.elementKinds.contains(kind) else {
                        throw LocatedError(path: path, line: element["kind"]!.line, message: "'kind' must be object or scenario, found '\(kind)'")
                    }
                    elements.append(Element(
                        name: try reader.string(element, "name"), kind: kind,
                        terms: try reader.strings(element, "terms", nonEmpty: true),
                        refer: try reader.strings(element, "refer", nonEmpty: true),
                        scene: try reader.string(element, "scene"), safety: try reader.string(element, "safety"),
                        line: elementNode.line))
                }
                subCategories.append(SubCategory(
                    name: try reader.string(sub, "name"), definition: try reader.string(sub, "definition"),
                    elements: elements))
            }
            categories.append(Category(name: try reader.string(category, "name"), subCategories: subCategories))
        }
        self.categories = categories
    }

    /// Every element as a record, with the line it was read from, in taxonomy order.
    /// Whether a selection (category names, or "Category / Sub-category") takes this
    /// sub-category; an empty selection takes all.
    public static func selects(_ filter: [String], category: String, subCategory: String) -> Bool {
        filter.isEmpty || filter.contains(category) || filter.contains("\(category) / \(subCategory)")
    }

    /// The entries of a selection that name no category and no "Category / Sub-category" here.
    public func unknownSelections(_ filter: [String]) -> [String] {
        var known = Set(categories.map(\.name))
        for category in categories {
            for sub in category.subCategories { known.insert("\(category.name) / \(sub.name)") }
        }
        return filter.filter { !known.contains($0) }
    }

    public func elementRecords(categories filter: [String] = []) -> [(line: Int, record: Record)] {
        var records: [(line: Int, record: Record)] = []
        for category in categories {
            for sub in category.subCategories where Self.selects(filter, category: category.name, subCategory: sub.name) {
                for element in sub.elements {
                    records.append((element.line, Record([
                        "kind": "element",
                        "taxonomy": .string(version),
                        "category": .string(category.name),
                        "sub_category": .string(sub.name),
                        "definition": .string(sub.definition),
                        "element": element.json,
                        "parents": [],
                    ])))
                }
            }
        }
        return records
    }
}

/// Typed reads from a located YAML mapping, each failure naming the file and line.
struct ConfigReader {
    let path: String

    func fail(_ line: Int, _ message: String) -> LocatedError {
        LocatedError(path: path, line: line, message: message)
    }

    func mapping(_ node: YAMLNode, _ what: String, keys: [String]? = nil) throws -> YAMLNode {
        guard let entries = node.entries else { throw fail(node.line, "\(what) must be a mapping, found \(node.typeName)") }
        if let keys {
            for entry in entries where !keys.contains(entry.key) {
                throw fail(entry.line, "unknown key '\(entry.key)' in \(what) (expected one of: \(keys.joined(separator: ", ")))")
            }
        }
        return node
    }

    func required(_ node: YAMLNode, _ key: String) throws -> YAMLNode {
        guard let value = node[key] else { throw fail(node.line, "missing key '\(key)'") }
        return value
    }

    func string(_ node: YAMLNode, _ key: String) throws -> String {
        let value = try required(node, key)
        switch value.scalar {
        case .string(let text)? where !text.isEmpty: return text
        case .int(let number)?: return String(number)
        default: throw fail(value.line, "'\(key)' must be a non-empty string, found \(value.typeName)")
        }
    }

    func list(_ node: YAMLNode, _ key: String) throws -> [YAMLNode] {
        let value = try required(node, key)
        guard let items = value.items, !items.isEmpty else { throw fail(value.line, "'\(key)' must be a non-empty list") }
        return items
    }

    /// A list that may be empty or left out (nothing then).
    func optionalList(_ node: YAMLNode, _ key: String) throws -> [YAMLNode] {
        guard let value = node[key] else { return [] }
        guard let items = value.items else { throw fail(value.line, "'\(key)' must be a list") }
        return items
    }

    func strings(_ node: YAMLNode, _ key: String, nonEmpty: Bool) throws -> [String] {
        let value = try required(node, key)
        guard let items = value.writtenStrings, !(nonEmpty && items.isEmpty) else {
            throw fail(value.line, "'\(key)' must be a\(nonEmpty ? " non-empty" : "") list of strings")
        }
        return items
    }
}
