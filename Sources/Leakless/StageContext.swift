import LeaklessCore

/// What a stage is given besides its records and parameters: the folder of its templates
/// (`stages/<stage>/`), the blob store, its backends, the request cache and the budget.
public struct StageContext: Sendable {
    public let templates: String
    public let blobs: String
    /// The backend of each role (`backend`, `prompt_writer`, `verifier`); builtin when absent.
    public let backends: [String: BackendConfig]
    /// The request cache folder.
    public let cache: String
    /// What the run may still spend.
    public let budget: Budget
    /// Planning only (`--dry-run`): nothing is sent, so API keys need not be set.
    public var planning = false
    /// The stats files of the stages run before this one, in order (the export's card and
    /// provenance read them and the outputs beside them).
    public var upstream: [String] = []
    /// For a stage that writes a folder: the folder.
    public var folder: String?
    /// What the stage's definition says it needs besides its input (`StageNeed`), by name.
    public var given: [String: JSONValue] = [:]

    public init(templates: String, blobs: String, backends: [String: BackendConfig] = [:], cache: String = "out/cache",
                budget: Budget = Budget()) {
        self.templates = templates
        self.blobs = blobs
        self.backends = backends
        self.cache = cache
        self.budget = budget
    }

    public init(request: StageRunRequest) {
        self.init(templates: request.templates, blobs: request.blobs, backends: request.backends, cache: request.cache,
                  budget: request.budget)
        upstream = request.upstream
        folder = request.folder
        given = request.given ?? [:]
    }

    /// The backend of a role when it is a network backend (not builtin or typography).
    public func network(_ role: String) -> BackendConfig? {
        guard let backend = backends[role], !backend.backendKind.isLocal else { return nil }
        return backend
    }

    /// The backend of a role whatever its kind; nil when the role is not given.
    public func backend(_ role: String) -> BackendConfig? { backends[role] }

    public func template(_ file: String) -> String { FileSystem.join(templates, file) }
}

extension Record {
    /// A required string field, or an error the runner reports with the input's file and line.
    func requireString(_ key: String) throws -> String {
        guard let value = fields[key] else { throw RecordError("missing field '\(key)'") }
        guard case .string(let text) = value else { throw RecordError("field '\(key)' must be a string, found \(value.typeName)") }
        return text
    }

    func requireObject(_ key: String) throws -> [String: JSONValue] {
        guard let value = fields[key] else { throw RecordError("missing field '\(key)'") }
        guard case .object(let object) = value else { throw RecordError("field '\(key)' must be an object, found \(value.typeName)") }
        return object
    }

    /// The element's naming terms, as the extract stage recorded them.
    func elementTerms() throws -> (name: String, terms: [String], refer: [String]) {
        let element = try requireObject("element")
        guard let name = element["name"]?.stringValue, let terms = element["terms"]?.stringArray,
            let refer = element["refer"]?.stringArray
        else { throw RecordError("field 'element' must have 'name', 'terms' and 'refer'") }
        return (name, terms, refer)
    }

    /// The record's `kind` ("" when it has none).
    var kind: String { fields["kind"]?.stringValue ?? "" }

    func requireKind(_ kinds: [String]) throws {
        let kind = try requireString("kind")
        guard kinds.contains(kind) else {
            throw RecordError("expected a record of kind \(kinds.map { "'\($0)'" }.joined(separator: " or ")), found '\(kind)'")
        }
    }
}
