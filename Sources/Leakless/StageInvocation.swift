import LeaklessCore
import LeaklessNetwork

/// One run of one stage by hand or by the driver: the files it reads and writes.
public struct StageInvocation: Sendable {
    public var stage: String
    /// The previous stage's records (JSONL), or for extract the taxonomy.
    public var input: String
    public var output: String
    public var rejects: String
    public var stats: String?
    /// The resolved parameters, as a JSON file (the driver writes it beside the output).
    public var config: String
    public var templates: String
    public var blobs: String
    /// The request cache, unless the config names one.
    public var cache: String = "out/cache"
    /// For export: the folder to write.
    public var folder: String?

    public init(
        stage: String, input: String, output: String, rejects: String, stats: String?, config: String,
        templates: String, blobs: String, folder: String?
    ) {
        self.stage = stage
        self.input = input
        self.output = output
        self.rejects = rejects
        self.stats = stats
        self.config = config
        self.templates = templates
        self.blobs = blobs
        self.folder = folder
    }

    /// Reads the config, checks it against the stage's parameters, and runs the stage.
    @discardableResult
    public func run() throws -> StageStats {
        guard let definition = Stages.definition(named: stage) else {
            throw RecordError("unknown stage '\(stage)'")
        }
        let (parameters, settings) = try Self.loadParameters(path: config, definition: definition)
        var context = StageContext(
            parameters: parameters, templates: templates, blobs: blobs, backends: settings.backends,
            cache: settings.cache ?? cache, budget: settings.budget)
        context.upstream = settings.upstream
        let schemaPath = FileSystem.join(templates, "schema.json")
        let schema = FileSystem.exists(schemaPath) ? try RecordSchema.load(path: schemaPath) : nil
        let runner = StageRunner(stageName: stage, output: output, rejects: rejects, stats: stats, schema: schema)

        let source = try Self.source(for: definition, input: input, context: context)
        func run<Stage: RecordStage>(_ stage: Stage) throws -> StageStats {
            var stage = stage
            return try runner.run(&stage, source: source)
        }
        if let stage = try Self.modelStage(stage, context: context) {
            Interruption.install()
            return try runner.run(concurrent: stage, source: source)
        }
        switch stage {
        case "extract": return try run(try BuiltinExtractStage(context: context))
        case "rewrite": return try run(try BuiltinRewriteStage(context: context))
        case "detect": return try run(try BuiltinDetectStage(context: context))
        case "image": return try run(try BuiltinImageStage(context: context))
        case "filter": return try run(try BuiltinFilterStage(context: context))
        case "dedup":
            var dedup = DedupStage(context: context)
            return try runner.run(twoPass: &dedup) { try Self.source(for: definition, input: input, context: context) }
        default:
            guard let folder else { throw RecordError("stage 'export' needs an output folder") }
            return try run(try ExportStage(context: context, folder: folder))
        }
    }

    /// The model-backed implementation of a stage whose backend is a network endpoint, or nil
    /// when the stage runs builtin.
    static func modelStage(_ name: String, context: StageContext) throws -> ModelStage? {
        guard let backend = context.network("backend") else { return nil }
        switch (name, backend.backendKind.serves) {
        case ("extract", "chat"): return try ModelExtractStage(context: context)
        case ("rewrite", "chat"): return try ModelRewriteStage(context: context)
        case ("detect", "chat"): return try ModelDetectStage(context: context)
        case ("image", "image"): return try GenerateImageStage(context: context)
        case ("filter", "chat"): return try ModelFilterStage(context: context)
        default: throw RecordError("stage '\(name)' cannot use a backend of kind '\(backend.kind)'")
        }
    }

    /// The records a stage reads.
    static func source(for definition: StageDefinition, input: String, context: StageContext) throws -> RecordSource {
        if case .parameter = definition.input {
            let taxonomy = try Taxonomy.load(path: input)
            return ArrayRecordSource(path: input, records: taxonomy.elementRecords(categories: context.strings("categories")))
        }
        return try JSONLReader(path: input)
    }

    /// What a config file gives besides parameters: the backends by role, the cache, the budget.
    struct RunSettings {
        var backends: [String: BackendConfig] = [:]
        var cache: String?
        var budget = Budget()
        var upstream: [String] = []
    }

    /// A config file: a JSON object of parameters (missing ones take their defaults, unknown or
    /// mistyped ones are errors), and under `backends`, `cache` and `budget` what the driver
    /// resolved from pipeline.yaml.
    static func loadParameters(path: String, definition: StageDefinition) throws -> ([String: JSONValue], RunSettings) {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes: try FileSystem.read(path))
        } catch let error as JSONParser.SyntaxError {
            throw LocatedError(path: path, line: nil, message: "invalid JSON: \(error)")
        }
        guard case .object(let given) = value else {
            throw LocatedError(path: path, line: nil, message: "expected a JSON object of parameters")
        }
        var parameters = definition.defaults
        var settings = RunSettings()
        for (name, item) in given {
            switch name {
            case "backends":
                for (role, backend) in item.objectValue ?? [:] {
                    guard definition.role(role) != nil else {
                        throw LocatedError(path: path, line: nil, message: "stage '\(definition.name)' has no backend role '\(role)'")
                    }
                    do {
                        settings.backends[role] = try BackendConfig(json: backend)
                    } catch let error as RecordError {
                        throw LocatedError(path: path, line: nil, message: "backends.\(role): \(error.description)")
                    }
                }
                continue
            case "cache":
                settings.cache = item.stringValue
                continue
            case "budget":
                settings.budget = Budget(json: item)
                continue
            case "upstream":
                settings.upstream = item.stringArray ?? []
                continue
            case "backend":
                continue
            default:
                break
            }
            guard let parameter = definition.parameter(name) else {
                throw LocatedError(path: path, line: nil, message: "unknown parameter '\(name)' for stage '\(definition.name)' (expected one of: \(definition.parameters.map(\.name).joined(separator: ", ")))")
            }
            guard let accepted = parameter.type.accept(item) else {
                throw LocatedError(path: path, line: nil, message: "'\(name)' must be \(parameter.type), found \(item.typeName)")
            }
            parameters[name] = accepted
        }
        return (parameters, settings)
    }
}
