import Yams

/// A YAML document as a tree that remembers the line of every node, so configuration errors can
/// point at the line to fix.
public struct YAMLNode: Sendable {
    public enum Kind: Sendable {
        case scalar(JSONValue)
        case mapping([Entry])
        case sequence([YAMLNode])
    }

    public struct Entry: Sendable {
        public let key: String
        public let line: Int
        public let value: YAMLNode
    }

    public let kind: Kind
    public let line: Int
    /// A scalar's text as written, before YAML resolves `on` or `no` to booleans: word lists
    /// read their items from this.
    public let text: String?

    public init(kind: Kind, line: Int, text: String? = nil) {
        self.kind = kind
        self.line = line
        self.text = text
    }

    /// The items of a list as the strings written, or nil when this is not a list of scalars.
    public var writtenStrings: [String]? {
        guard let items else { return nil }
        var strings: [String] = []
        for item in items {
            guard let text = item.text else { return nil }
            strings.append(text)
        }
        return strings
    }

    public var typeName: String {
        switch kind {
        case .scalar(let value): return value.typeName
        case .mapping: return "mapping"
        case .sequence: return "list"
        }
    }

    /// The node as JSON (mappings become objects).
    public var json: JSONValue {
        switch kind {
        case .scalar(let value): return value
        case .sequence(let items): return .array(items.map(\.json))
        case .mapping(let entries):
            return .object(Dictionary(entries.map { ($0.key, $0.value.json) }, uniquingKeysWith: { _, last in last }))
        }
    }

    public var entries: [Entry]? {
        if case .mapping(let entries) = kind { return entries }
        return nil
    }

    public var items: [YAMLNode]? {
        if case .sequence(let items) = kind { return items }
        return nil
    }

    public var scalar: JSONValue? {
        if case .scalar(let value) = kind { return value }
        return nil
    }

    public subscript(key: String) -> YAMLNode? {
        entries?.first(where: { $0.key == key })?.value
    }
}

public enum YAMLDocument {
    /// Parses `text` (read from `path`, used in errors) into a located tree.
    public static func parse(_ text: String, path: String) throws -> YAMLNode {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw LocatedError(path: path, line: errorLine(error), message: "invalid YAML: \(errorSummary(error))")
        }
        guard let node else { throw LocatedError(path: path, line: nil, message: "the file is empty") }
        return try convert(node, path: path)
    }

    public static func load(path: String) throws -> YAMLNode {
        try parse(try FileSystem.readText(path), path: path)
    }

    private static func convert(_ node: Node, path: String) throws -> YAMLNode {
        let line = node.mark?.line ?? 0
        switch node {
        case .scalar(let scalar):
            return YAMLNode(kind: .scalar(scalarValue(node, scalar)), line: line, text: scalar.string)
        case .sequence(let sequence):
            return YAMLNode(kind: .sequence(try sequence.map { try convert($0, path: path) }), line: line)
        case .mapping(let mapping):
            var entries: [YAMLNode.Entry] = []
            var seen = Set<String>()
            for (key, value) in mapping {
                let keyLine = key.mark?.line ?? line
                guard case .scalar(let keyScalar) = key else {
                    throw LocatedError(path: path, line: keyLine, message: "mapping keys must be plain strings")
                }
                guard seen.insert(keyScalar.string).inserted else {
                    throw LocatedError(path: path, line: keyLine, message: "duplicate key '\(keyScalar.string)'")
                }
                entries.append(.init(key: keyScalar.string, line: keyLine, value: try convert(value, path: path)))
            }
            return YAMLNode(kind: .mapping(entries), line: line)
        case .alias:
            throw LocatedError(path: path, line: line, message: "YAML aliases are not supported here")
        }
    }

    private static func scalarValue(_ node: Node, _ scalar: Node.Scalar) -> JSONValue {
        // Quoted scalars are strings whatever they look like; plain ones resolve by YAML's core schema.
        guard scalar.style == .plain || scalar.style == .any else { return .string(scalar.string) }
        switch node.tag {
        case Tag(.null): return .null
        case Tag(.bool): return node.bool.map(JSONValue.bool) ?? .string(scalar.string)
        case Tag(.int): return node.int.map { .int(Int64($0)) } ?? .string(scalar.string)
        case Tag(.float): return node.float.map(JSONValue.double) ?? .string(scalar.string)
        default: return .string(scalar.string)
        }
    }

    private static func errorLine(_ error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return nil
        }
    }

    private static func errorSummary(_ error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _):
            return problem
        default:
            return "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
        }
    }
}
