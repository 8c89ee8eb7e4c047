import Foundation

/// A model backend named in pipeline.yaml: its kind and every setting, defaults filled in.
public struct BackendConfig: Sendable {
    public static var kinds: [String] { BackendKind.all.map(\.name) }

    public let name: String
    public let kind: String
    /// Every setting as written (request bodies and keys read these, so keys stay byte-stable).
    public let settings: [String: JSONValue]

    public init(name: String, kind: String, settings: [String: JSONValue]) {
        self.name = name
        self.kind = kind
        self.settings = settings
    }

    /// The settings the clients act on, typed.
    public var typed: BackendSettings { BackendSettings(settings, kind: backendKind) }

    public var backendKind: BackendKind { BackendKind.named(kind) ?? .builtin }

    /// What identifies the backend in a stage key and a request cache: its kind and the settings
    /// that change replies. Never a secret: a key is named by its environment variable, and
    /// not even that name enters the identity.
    public var identity: JSONValue {
        var fields: [String: JSONValue] = ["kind": .string(kind)]
        for setting in backendKind.settings where setting.affectsOutput {
            fields[setting.name] = settings[setting.name] ?? .null
        }
        return .object(fields)
    }

    /// The config as the stage executables read it (every setting).
    public var json: JSONValue {
        var fields = settings
        fields["kind"] = .string(kind)
        fields["name"] = .string(name)
        return .object(fields)
    }

    public init(json: JSONValue) throws {
        guard case .object(var fields) = json, let kind = fields["kind"]?.stringValue, BackendKind.named(kind) != nil else {
            throw RecordError("a backend must be an object with a known 'kind'")
        }
        let name = fields["name"]?.stringValue ?? kind
        fields.removeValue(forKey: "kind")
        fields.removeValue(forKey: "name")
        self.init(name: name, kind: kind, settings: fields)
    }

    public func string(_ name: String) -> String { settings[name]?.stringValue ?? "" }
    public func int(_ name: String) -> Int { Int(settings[name]?.intValue ?? 0) }
    public func double(_ name: String) -> Double { settings[name]?.doubleValue ?? 0 }
}

/// A backend's settings as the clients act on them: where it is, how to authenticate, how hard
/// to push it, what it serves and what it costs. Read from the checked settings, a missing
/// one taking its kind's default (a setting the kind does not have: zero, empty or false).
public struct BackendSettings: Sendable, Equatable {
    public var baseURL: String
    /// The environment variable holding the API key (empty: no key).
    public var apiKeyEnv: String
    public var maxInFlight: Int
    public var requestsPerMinute: Int
    public var tokensPerMinute: Int
    public var timeout: Double
    public var maxRetries: Int
    public var retryBaseSeconds: Double
    public var model: String
    /// Whether the model takes images.
    public var vision: Bool
    public var maxTokens: Int
    public var maxReasks: Int
    public var jsonMode: String
    /// USD per million prompt and completion tokens, and per image.
    public var pricePrompt: Double
    public var priceCompletion: Double
    public var priceImage: Double

    public init(_ settings: [String: JSONValue], kind: BackendKind) {
        func value(_ name: String) -> JSONValue? { settings[name] ?? kind.setting(name)?.defaultValue }
        func string(_ name: String) -> String { value(name)?.stringValue ?? "" }
        func int(_ name: String) -> Int { Int(value(name)?.intValue ?? 0) }
        func double(_ name: String) -> Double { value(name)?.doubleValue ?? 0 }
        baseURL = string("base_url")
        apiKeyEnv = string("api_key_env")
        maxInFlight = max(1, int("max_in_flight"))
        requestsPerMinute = int("rpm")
        tokensPerMinute = int("tpm")
        timeout = double("timeout")
        maxRetries = int("max_retries")
        retryBaseSeconds = double("retry_base_seconds")
        model = string("model")
        vision = value("vision")?.boolValue ?? false
        maxTokens = max(1, int("max_tokens"))
        maxReasks = int("max_reasks")
        jsonMode = string("json_mode")
        pricePrompt = double("price_prompt")
        priceCompletion = double("price_completion")
        priceImage = double("price_image")
    }
}

/// Limits on what one `leakless run` may spend on model calls; a stage stops before it would
/// pass one. Zero means no limit.
public struct Budget: Sendable, Equatable, Codable {
    public var usd: Double = 0
    public var requests: Int = 0
    public var tokens: Int = 0

    public init(usd: Double = 0, requests: Int = 0, tokens: Int = 0) {
        self.usd = usd
        self.requests = requests
        self.tokens = tokens
    }

    public var isLimited: Bool { usd > 0 || requests > 0 || tokens > 0 }

    public var json: JSONValue {
        .object(["usd": .double(usd), "requests": .int(Int64(requests)), "tokens": .int(Int64(tokens))])
    }

    public init(json: JSONValue?) {
        usd = json?["usd"]?.doubleValue ?? 0
        requests = Int(json?["requests"]?.intValue ?? 0)
        tokens = Int(json?["tokens"]?.intValue ?? 0)
    }
}

public struct StageConfig: Sendable {
    public let definition: StageDefinition
    /// The line of the stage's entry in pipeline.yaml.
    public let line: Int
    /// The backend of each role the stage was given.
    public let backends: [String: BackendConfig]
    /// Every parameter, defaults filled in.
    public let parameters: [String: JSONValue]
    /// The executor settings the stage's own `executor:` gives, over the pipeline's.
    public var executorOverrides: [String: JSONValue] = [:]

    public var name: String { definition.name }
    public var backend: BackendConfig? { backends["backend"] }
}

/// pipeline.yaml, checked against the stages the project has.
public struct PipelineConfig: Sendable {
    public let path: String
    /// The folder the pipeline's relative paths start from (the file's own folder).
    public let root: String
    /// Where generated output goes (store, blobs, exports), relative to `root` unless absolute.
    public let workdir: String
    public let backends: [String: BackendConfig]
    public let budget: Budget
    public let stages: [StageConfig]
    /// Where the stages run (`executor:`); `leakless run --executor` may override its kind.
    public var executor = ExecutorSettings()

    /// The executor of one stage: the pipeline's, with the stage's own settings over it.
    public func executor(for stage: StageConfig) -> ExecutorSettings {
        executor.applying(stage.executorOverrides)
    }

    public var workdirPath: String { resolve(workdir) }

    /// The pipeline file a command reads when none is named.
    public static let defaultPath = "pipeline.yaml"
    /// Where the project's shared files (stages/, data/) are looked for after the pipeline file's
    /// own folder: an installed share folder.
    public var shareFolders: [String] = []

    /// `path` relative to the pipeline file's folder (where outputs go).
    public func resolve(_ path: String) -> String { root == "." ? path : FileSystem.join(root, path) }

    /// An input the pipeline names (a template folder, a data file): beside the pipeline file,
    /// else in a share folder; where it is not found, the path beside the pipeline file.
    public func locate(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        for candidate in [resolve(path)] + shareFolders.map({ FileSystem.join($0, path) }) where FileSystem.exists(candidate) {
            return candidate
        }
        return resolve(path)
    }

    /// Where `locate` looked, for an error.
    public func searched(_ path: String) -> String {
        path.hasPrefix("/") ? path : ([resolve(path)] + shareFolders.map { FileSystem.join($0, path) }).joined(separator: ", ")
    }

    public func stage(named name: String) -> StageConfig? { stages.first { $0.name == name } }

    public static func load(path: String, definitions: [StageDefinition]) throws -> PipelineConfig {
        let document = try YAMLDocument.load(path: path)
        return try PipelineConfig(document: document, path: path, definitions: definitions)
    }

    /// `environment` is where a `base_url`'s `${NAME}` and `${NAME:-default}` are looked up.
    public init(
        document: YAMLNode, path: String, definitions: [StageDefinition],
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws {
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
        func checked(_ type: ParameterType, _ node: YAMLNode, _ name: String) throws -> JSONValue {
            // A mapping's entries are checked one by one, so an error names the entry's line.
            if case .mapping(let fields) = type, let entries = node.entries {
                for entry in entries where !fields.contains(where: { $0.name == entry.key }) {
                    throw fail(entry.line, "unknown key '\(entry.key)' in '\(name)' (expected one of: \(fields.map(\.name).joined(separator: ", ")))")
                }
                var values = Dictionary(uniqueKeysWithValues: fields.map { ($0.name, $0.defaultValue) })
                for entry in entries {
                    values[entry.key] = try checked(fields.first { $0.name == entry.key }!.type, entry.value, "\(name).\(entry.key)")
                }
                return .object(values)
            }
            if case .counts = type, let entries = node.entries {
                for entry in entries {
                    if case .failure(let mismatch) = type.check(.object([entry.key: entry.value.json])) {
                        throw fail(entry.line, "'\(name).\(entry.key)' must be \(mismatch.expected.replacingOccurrences(of: "a mapping whose '\(entry.key)' is ", with: "")), found \(describe(entry.value))")
                    }
                }
            }
            switch type.check(node.json) {
            case .success(let value): return value
            case .failure(let mismatch): throw fail(node.line, "'\(name)' must be \(mismatch.expected), found \(describe(node))")
            }
        }
        func checkKeys(_ entries: [YAMLNode.Entry], allowed: [String], in what: String) throws {
            for entry in entries where !allowed.contains(entry.key) {
                throw fail(entry.line, "unknown key '\(entry.key)' in \(what) (expected one of: \(allowed.joined(separator: ", ")))")
            }
        }

        self.path = path
        self.root = FileSystem.parent(of: path)
        let top = try mapping(document, "the pipeline")
        try checkKeys(top, allowed: ["workdir", "backends", "budget", "executor", "stages"], in: "the pipeline")
        func executorSettings(_ node: YAMLNode, _ what: String) throws -> [String: JSONValue] {
            if case .scalar(.string(let name)) = node.kind, what == "executor" {
                guard ExecutorSettings.Kind(rawValue: name) != nil else {
                    throw fail(node.line, "'executor' must be one of \(ExecutorSettings.Kind.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")) or a mapping of its settings, found '\(name)'")
                }
                return ["kind": .string(name)]
            }
            let entries = try mapping(node, "'\(what)'")
            let fields = ExecutorSettings.fields
            try checkKeys(entries, allowed: fields.map(\.name), in: "'\(what)'")
            var values: [String: JSONValue] = [:]
            for entry in entries {
                let value = try checked(fields.first { $0.name == entry.key }!.type, entry.value, entry.key)
                if let problem = ExecutorSettings.problem(entry.key, value) { throw fail(entry.value.line, problem) }
                values[entry.key] = value
            }
            return values
        }
        if let node = document["executor"] {
            executor = ExecutorSettings().applying(try executorSettings(node, "executor"))
        }

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
            guard case .scalar(.string(let kindName)) = kindNode.kind, let kind = BackendKind.named(kindName) else {
                throw fail(kindNode.line, "backend kind must be one of: \(BackendConfig.kinds.joined(separator: ", "))")
            }
            try checkKeys(fields, allowed: ["kind"] + kind.settings.map(\.name), in: "backend '\(entry.key)' of kind '\(kindName)'")
            var settings: [String: JSONValue] = [:]
            for setting in kind.settings {
                guard let node = entry.value[setting.name] else {
                    guard let value = setting.defaultValue else {
                        throw fail(entry.line, "backend '\(entry.key)' of kind '\(kindName)' needs '\(setting.name)' (\(setting.help))")
                    }
                    settings[setting.name] = value
                    continue
                }
                var value = try checked(setting.type, node, setting.name)
                if setting.name == "base_url", let written = value.stringValue {
                    do {
                        value = .string(try Self.expandEnvironment(written, environment: environment))
                    } catch let error as EnvironmentExpansionError {
                        throw fail(node.line, "'base_url': \(error.message)")
                    }
                }
                if setting.name == "base_url", let url = value.stringValue, !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
                    throw fail(node.line, "'base_url' must start with http:// or https://, found '\(url)'")
                }
                if setting.name == "api_key_env", let name = value.stringValue, name.contains(where: { !($0.isLetter || $0.isNumber || $0 == "_") }) {
                    throw fail(node.line, "'api_key_env' is the NAME of an environment variable (letters, digits, _), not the key itself")
                }
                settings[setting.name] = value
            }
            backends[entry.key] = BackendConfig(name: entry.key, kind: kindName, settings: settings)
        }
        self.backends = backends

        var budget = Budget()
        if let node = document["budget"] {
            let fields = try mapping(node, "'budget'")
            try checkKeys(fields, allowed: ["usd", "requests", "tokens"], in: "'budget'")
            for field in fields {
                let type: ParameterType = field.key == "usd" ? .number(0...1e12) : .integer(0...Int64.max)
                let value = try checked(type, field.value, field.key)
                switch field.key {
                case "usd": budget.usd = value.doubleValue ?? 0
                case "requests": budget.requests = Int(value.intValue ?? 0)
                default: budget.tokens = Int(value.intValue ?? 0)
                }
            }
        }
        self.budget = budget

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
            let allowed = definition.parameters.map(\.name) + definition.roles.map(\.name) + ["executor"]
            try checkKeys(fields, allowed: allowed, in: "stage '\(entry.key)'")
            var executorOverrides: [String: JSONValue] = [:]

            var parameters = definition.defaults
            var chosen: [String: BackendConfig] = [:]
            for field in fields {
                if field.key == "executor" {
                    executorOverrides = try executorSettings(field.value, "stages.\(entry.key).executor")
                    continue
                }
                if let role = definition.role(field.key) {
                    guard case .scalar(.string(let name)) = field.value.kind, let named = backends[name] else {
                        let names = backends.keys.sorted().joined(separator: ", ")
                        throw fail(field.line, "'\(field.key)' must name a backend declared under 'backends' (\(names.isEmpty ? "none declared" : names))")
                    }
                    guard role.serves.contains(named.backendKind.serves) else {
                        let fitting = BackendKind.all.filter { role.serves.contains($0.serves) }.map(\.name)
                        throw fail(field.line, "stage '\(entry.key)': '\(field.key)' (\(role.help)) takes a backend of kind \(fitting.joined(separator: " or ")), but '\(name)' is '\(named.kind)'")
                    }
                    if role.needsVision && named.backendKind.serves == "chat" && !named.typed.vision {
                        throw fail(field.line, "stage '\(entry.key)': '\(field.key)' sends images, but backend '\(name)' has vision: false")
                    }
                    chosen[role.name] = named
                    continue
                }
                let parameter = definition.parameter(field.key)!
                let value = try checked(parameter.type, field.value, field.key)
                parameters[field.key] = value
            }
            if let role = definition.role("backend"), role.required, chosen["backend"] == nil {
                let fitting = backends.values.filter { role.serves.contains($0.backendKind.serves) }
                guard fitting.count == 1 else {
                    throw fail(entry.line, "stage '\(entry.key)' needs 'backend: NAME' naming one of the declared backends")
                }
                chosen["backend"] = fitting[0]
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
            var stage = StageConfig(definition: definition, line: entry.line, backends: chosen, parameters: parameters)
            stage.executorOverrides = executorOverrides
            stages.append(stage)
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

extension StageConfig {
    /// Whether any of the stage's roles calls a model over the network.
    public var usesModels: Bool { backends.values.contains { !$0.backendKind.isLocal } }
}

struct EnvironmentExpansionError: Error {
    let message: String
}

extension PipelineConfig {
    /// `text` with each `${NAME}` replaced by the variable's value and each `${NAME:-default}` by
    /// the value, or the default when the variable is unset or empty. An unset `${NAME}` with no
    /// default is an error, never an empty string.
    static func expandEnvironment(_ text: String, environment: [String: String]) throws -> String {
        var result = ""
        var rest = text[...]
        while let open = rest.range(of: "${") {
            result += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                throw EnvironmentExpansionError(message: "'${' without its closing '}' in '\(text)'")
            }
            let inner = rest[open.upperBound..<close]
            let name: Substring
            var fallback: Substring?
            if let separator = inner.range(of: ":-") {
                name = inner[..<separator.lowerBound]
                fallback = inner[separator.upperBound...]
            } else {
                name = inner
            }
            guard let first = name.first, first == "_" || first.isLetter,
                name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) })
            else {
                throw EnvironmentExpansionError(message: "'${\(inner)}' does not name an environment variable (letters, digits, _)")
            }
            if let value = environment[String(name)], !value.isEmpty {
                result += value
            } else if let fallback {
                result += fallback
            } else {
                throw EnvironmentExpansionError(message: "the environment variable \(name) is not set (write ${\(name):-DEFAULT} for a default)")
            }
            rest = rest[rest.index(after: close)...]
        }
        return result + rest
    }
}
