/// A model backend named in pipeline.yaml.
public struct BackendConfig: Sendable {
    public static let kinds = ["builtin"]

    public let name: String
    public let kind: String
    public let settings: [String: JSONValue]

    /// What identifies the backend in a stage key: its kind and settings, never a secret (keys
    /// are named by the environment variable that holds them, and only the name is kept).
    public var identity: JSONValue {
        var fields = settings
        fields["kind"] = .string(kind)
        return .object(fields)
    }
}

public struct StageConfig: Sendable {
    public let definition: StageDefinition
    /// The line of the stage's entry in pipeline.yaml.
    public let line: Int
    public let backend: BackendConfig?
    /// Every parameter, defaults filled in.
    public let parameters: [String: JSONValue]

    public var name: String { definition.name }
}

/// pipeline.yaml, checked against the stages the project has.
public struct PipelineConfig: Sendable {
    public let path: String
    /// The folder the pipeline's relative paths start from (the file's own folder).
    public let root: String
    /// Where generated output goes (store, blobs, exports), relative to `root` unless absolute.
    public let workdir: String
    public let backends: [String: BackendConfig]
    public let stages: [StageConfig]

    public var workdirPath: String { resolve(workdir) }

    public func resolve(_ path: String) -> String { root == "." ? path : FileSystem.join(root, path) }

    public func stage(named name: String) -> StageConfig? { stages.first { $0.name == name } }

    public static func load(path: String, definitions: [StageDefinition]) throws -> PipelineConfig {
        let document = try YAMLDocument.load(path: path)
        return try PipelineConfig(document: document, path: path, definitions: definitions)
    }

    public init(document: YAMLNode, path: String, definitions: [StageDefinition]) throws {
        func fail(_ line: Int, _ message: String) -> LocatedError {
            LocatedError(path: path, line: line, message: message)
        }
        func mapping(_ node: YAMLNode, _ what: String) throws -> [YAMLNode.Entry] {
            if case .scalar(.null) = node.kind { return [] }
            guard let entries = node.entries else {
                throw fail(node.line, "\(what) must be a mapping, found \(node.typeName)")
            }
            return entries
        }
        func checkKeys(_ entries: [YAMLNode.Entry], allowed: [String], in what: String) throws {
            for entry in entries where !allowed.contains(entry.key) {
                throw fail(entry.line, "unknown key '\(entry.key)' in \(what) (expected one of: \(allowed.joined(separator: ", ")))")
            }
        }

        self.path = path
        self.root = FileSystem.parent(of: path)
        let top = try mapping(document, "the pipeline")
        try checkKeys(top, allowed: ["workdir", "backends", "stages"], in: "the pipeline")

        var workdir = "out"
        if let node = document["workdir"] {
            guard case .scalar(.string(let value)) = node.kind, !value.isEmpty else {
                throw fail(node.line, "'workdir' must be a folder path, found \(node.typeName)")
            }
            workdir = value
        }
        self.workdir = workdir

        var backends: [String: BackendConfig] = [:]
        for entry in try mapping(document["backends"] ?? YAMLNode(kind: .scalar(.null), line: 0), "'backends'") {
            let fields = try mapping(entry.value, "backend '\(entry.key)'")
            guard let kindNode = entry.value["kind"] else {
                throw fail(entry.line, "backend '\(entry.key)' needs a 'kind' (one of: \(BackendConfig.kinds.joined(separator: ", ")))")
            }
            guard case .scalar(.string(let kind)) = kindNode.kind, BackendConfig.kinds.contains(kind) else {
                throw fail(kindNode.line, "backend kind must be one of: \(BackendConfig.kinds.joined(separator: ", "))")
            }
            try checkKeys(fields, allowed: ["kind"], in: "backend '\(entry.key)' of kind '\(kind)'")
            backends[entry.key] = BackendConfig(name: entry.key, kind: kind, settings: [:])
        }
        self.backends = backends

        guard let stagesNode = document["stages"] else {
            throw fail(document.line, "the pipeline needs a 'stages' mapping")
        }
        let known = definitions.map(\.name)
        var stages: [StageConfig] = []
        for entry in try mapping(stagesNode, "'stages'") {
            guard let definition = definitions.first(where: { $0.name == entry.key }) else {
                throw fail(entry.line, "unknown stage '\(entry.key)' (expected one of: \(known.joined(separator: ", ")))")
            }
            let fields = try mapping(entry.value, "stage '\(entry.key)'")
            var allowed = definition.parameters.map(\.name)
            if definition.usesBackend { allowed.append("backend") }
            try checkKeys(fields, allowed: allowed, in: "stage '\(entry.key)'")

            var parameters = definition.defaults
            var backend: BackendConfig?
            for field in fields {
                if field.key == "backend" {
                    guard case .scalar(.string(let name)) = field.value.kind, let named = backends[name] else {
                        let names = backends.keys.sorted().joined(separator: ", ")
                        throw fail(field.line, "'backend' must name a backend declared under 'backends' (\(names.isEmpty ? "none declared" : names))")
                    }
                    backend = named
                    continue
                }
                let parameter = definition.parameter(field.key)!
                guard let value = parameter.type.accept(field.value.json) else {
                    throw fail(field.line, "'\(field.key)' must be \(parameter.type), found \(describe(field.value))")
                }
                parameters[field.key] = value
            }
            if definition.usesBackend && backend == nil {
                guard let only = backends.values.first, backends.count == 1 else {
                    throw fail(entry.line, "stage '\(entry.key)' needs 'backend: NAME' naming one of the declared backends")
                }
                backend = only
            }
            if let previous = stages.last {
                guard case .records(let kinds) = definition.input else {
                    throw fail(entry.line, "stage '\(entry.key)' must come first: it reads its own input, not another stage's")
                }
                guard let produced = previous.definition.outputKind, kinds.contains(produced) else {
                    let what = previous.definition.outputKind.map { "'\($0)' records" } ?? "no records"
                    throw fail(entry.line, "stage '\(entry.key)' reads \(kinds.map { "'\($0)'" }.joined(separator: " or ")) records, but '\(previous.name)' before it writes \(what)")
                }
            } else if case .records = definition.input {
                throw fail(entry.line, "stage '\(entry.key)' cannot come first: it reads another stage's records")
            }
            stages.append(StageConfig(definition: definition, line: entry.line, backend: backend, parameters: parameters))
        }
        guard !stages.isEmpty else { throw fail(stagesNode.line, "'stages' lists no stage") }
        self.stages = stages
    }
}

private func describe(_ node: YAMLNode) -> String {
    switch node.kind {
    case .scalar(.string(let text)): return "'\(text)'"
    case .scalar(let value): return "\(value.typeName) \(JSONWriter.canonical(value))"
    default: return node.typeName
    }
}
