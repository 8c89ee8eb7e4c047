import LeaklessCore

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
        let parameters = try Self.loadParameters(path: config, definition: definition)
        let context = StageContext(parameters: parameters, templates: templates, blobs: blobs)
        let schemaPath = FileSystem.join(templates, "schema.json")
        let schema = FileSystem.exists(schemaPath) ? try RecordSchema.load(path: schemaPath) : nil
        let runner = StageRunner(stageName: stage, output: output, rejects: rejects, stats: stats, schema: schema)

        let source: RecordSource
        if case .parameter = definition.input {
            let taxonomy = try Taxonomy.load(path: input)
            source = ArrayRecordSource(path: input, records: taxonomy.elementRecords(categories: context.strings("categories")))
        } else {
            source = try JSONLReader(path: input)
        }
        func run<Stage: RecordStage>(_ stage: Stage) throws -> StageStats {
            var stage = stage
            return try runner.run(&stage, source: source)
        }
        switch stage {
        case "extract": return try run(try BuiltinExtractStage(context: context))
        case "rewrite": return try run(try BuiltinRewriteStage(context: context))
        case "detect": return try run(try BuiltinDetectStage(context: context))
        case "image": return try run(try BuiltinImageStage(context: context))
        case "filter": return try run(try BuiltinFilterStage(context: context))
        case "dedup": return try run(DedupStage(context: context))
        default:
            guard let folder else { throw RecordError("stage 'export' needs an output folder") }
            return try run(try ExportStage(context: context, folder: folder))
        }
    }

    /// A config file: a JSON object of parameters; missing ones take their defaults, unknown or
    /// mistyped ones are errors.
    static func loadParameters(path: String, definition: StageDefinition) throws -> [String: JSONValue] {
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
        for (name, item) in given {
            if name == "backend" { continue }
            guard let parameter = definition.parameter(name) else {
                throw LocatedError(path: path, line: nil, message: "unknown parameter '\(name)' for stage '\(definition.name)' (expected one of: \(definition.parameters.map(\.name).joined(separator: ", ")))")
            }
            guard let accepted = parameter.type.accept(item) else {
                throw LocatedError(path: path, line: nil, message: "'\(name)' must be \(parameter.type), found \(item.typeName)")
            }
            parameters[name] = accepted
        }
        return parameters
    }
}
