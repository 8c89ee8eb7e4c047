/// What kind of value a stage parameter takes.
public enum ParameterType: Sendable, CustomStringConvertible {
    case integer(ClosedRange<Int64>)
    case number(ClosedRange<Double>)
    case boolean
    case string
    case choice([String])
    case stringList
    /// A file or folder of the project; the stage key covers its bytes, not its path.
    case path
    /// A path that may be absent (a model a user may not have fetched): the key covers its
    /// bytes when it is there, and its absence when it is not; the stage says whether it needs it.
    case optionalPath
    /// A large collection of files outside the project (an installed image collection), or
    /// empty for none: the key covers its files' names, sizes and times, not their bytes.
    case collection
    /// A list of such collections (folders of images a user has), each keyed like `collection`.
    case collectionList
    /// A mapping of named settings, each with its own type and default.
    case mapping([StageParameter])
    /// A mapping of names the user chooses (categories) to integers in a range.
    case counts(ClosedRange<Int64>)

    /// A choice among an enumeration's cases, by their raw values.
    public static func choice<Choice: CaseIterable & RawRepresentable>(of _: Choice.Type) -> ParameterType where Choice.RawValue == String {
        .choice(Choice.allCases.map(\.rawValue))
    }

    public var isPath: Bool {
        switch self {
        case .path, .optionalPath, .collection, .collectionList: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .integer(let range): return "an integer from \(range.lowerBound) to \(range.upperBound)"
        case .number(let range): return "a number from \(range.lowerBound) to \(range.upperBound)"
        case .boolean: return "true or false"
        case .string: return "a string"
        case .choice(let options): return "one of " + options.map { "'\($0)'" }.joined(separator: ", ")
        case .stringList: return "a list of strings"
        case .path, .optionalPath: return "a path"
        case .collection: return "a folder path, or empty for none"
        case .collectionList: return "a list of folder paths"
        case .mapping(let fields): return "a mapping of " + fields.map { "'\($0.name)' (\($0.type))" }.joined(separator: ", ")
        case .counts(let range): return "a mapping of names to integers from \(range.lowerBound) to \(range.upperBound)"
        }
    }

    /// The value if it has this type (an integer is accepted where a number is asked for), or
    /// the reason it does not, naming the value as written.
    public func check(_ value: JSONValue) -> Result<JSONValue, ParameterMismatch> {
        func no() -> Result<JSONValue, ParameterMismatch> { .failure(ParameterMismatch(expected: description, found: value)) }
        switch (self, value) {
        case (.integer(let range), _):
            guard let number = value.intValue, range.contains(number) else { return no() }
            return .success(.int(number))
        case (.number(let range), _):
            guard let number = value.doubleValue, number.isFinite, range.contains(number) else { return no() }
            return .success(.double(number))
        case (.boolean, .bool): return .success(value)
        case (.string, .string), (.path, .string), (.optionalPath, .string), (.collection, .string): return .success(value)
        case (.choice(let options), .string(let text)): return options.contains(text) ? .success(value) : no()
        case (.stringList, _), (.collectionList, _): return value.stringArray != nil ? .success(value) : no()
        case (.mapping(let fields), .object(let given)):
            var checked = Dictionary(uniqueKeysWithValues: fields.map { ($0.name, $0.defaultValue) })
            for (key, entry) in given.sorted(by: { $0.key < $1.key }) {
                guard let field = fields.first(where: { $0.name == key }) else {
                    return .failure(ParameterMismatch(expected: "a mapping with keys \(fields.map { "'\($0.name)'" }.joined(separator: ", ")), not '\(key)'", found: value))
                }
                switch field.type.check(entry) {
                case .success(let accepted): checked[key] = accepted
                case .failure(let mismatch):
                    return .failure(ParameterMismatch(expected: "a mapping whose '\(key)' is \(mismatch.expected)", found: value, detail: entry))
                }
            }
            return .success(.object(checked))
        case (.counts(let range), .object(let given)):
            for (key, entry) in given.sorted(by: { $0.key < $1.key }) {
                guard let number = entry.intValue, range.contains(number) else {
                    return .failure(ParameterMismatch(expected: "a mapping whose '\(key)' is an integer from \(range.lowerBound) to \(range.upperBound)", found: value, detail: entry))
                }
            }
            return .success(value)
        default: return no()
        }
    }
}

/// A value that is not of a parameter's type: says what was expected and what was written.
public struct ParameterMismatch: Error, CustomStringConvertible {
    public let expected: String
    public let found: JSONValue
    /// For a mapping: the entry that is wrong, named in place of the whole mapping.
    public var detail: JSONValue?

    public init(expected: String, found: JSONValue, detail: JSONValue? = nil) {
        self.expected = expected
        self.found = found
        self.detail = detail
    }

    public var description: String { "must be \(expected), found \((detail ?? found).written)" }
}

extension JSONValue {
    /// The value as a user wrote it: a string quoted, a number or list as JSON.
    public var written: String {
        switch self {
        case .string(let text): return "'\(text)'"
        case .null: return "nothing"
        case .object: return "a mapping"
        default: return JSONWriter.canonical(self)
        }
    }
}

public struct StageParameter: Sendable {
    public let name: String
    public let type: ParameterType
    public let defaultValue: JSONValue
    public let help: String

    public init(_ name: String, _ type: ParameterType, default defaultValue: JSONValue, _ help: String) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.help = help
    }
}

/// What a stage reads besides its input records and its parameters.
public enum StageNeed: Sendable {
    /// An append-only file of the workdir (`path`, relative to it), when `applies` says the
    /// stage's parameters (as pipeline.yaml gives them) use it: the key covers its complete lines
    /// (their hash and length, or "absent"), and the stage is given, under `name`, the file's
    /// path and that length (`{"path", "bytes"}`), and reads no further.
    case workdirLog(name: String, path: String, applies: @Sendable ([String: JSONValue]) -> Bool)
    /// Another stage's parameters (its defaults when the pipeline has no such stage, paths
    /// resolved), given under `name`.
    case stageParameters(name: String, stage: String)

    public var name: String {
        switch self {
        case .workdirLog(let name, _, _), .stageParameters(let name, _): return name
        }
    }
}

/// An append-only file of JSON lines (a log several writers append to): what of it is complete.
public enum AppendOnlyLog {
    /// The hash and length of the file's complete lines, nil when it has none (or no file).
    public static func contentKey(path: String) throws -> (hash: String, bytes: Int)? {
        guard FileSystem.exists(path) else { return nil }
        let bytes = try FileSystem.read(path)
        guard let end = bytes.lastIndex(of: UInt8(ascii: "\n")) else { return nil }
        return (ContentHash(of: bytes[...end]).hex, end + 1)
    }
}

/// A stage as the driver knows it: its name, version, parameters and what it reads and writes.
public struct StageDefinition: Sendable {
    public enum Input: Sendable, Equatable {
        /// Reads a data file named by a parameter (extract reads the taxonomy).
        case parameter(String)
        /// Reads the previous stage's records, which must be of one of these kinds.
        case records([String])
    }

    public enum Output: Sendable, Equatable {
        /// JSONL records of this kind.
        case records(String)
        /// A folder (the export): what it writes is the end of the pipeline.
        case folder
    }

    public let name: String
    /// Bump when the stage's code changes what it writes: it changes the stage key.
    public let version: Int
    public let summary: String
    public let input: Input
    public let output: Output
    public let parameters: [StageParameter]
    /// The backends the stage works through, each under its own key in pipeline.yaml.
    public let roles: [BackendRole]
    /// What else the stage reads, declared here so that the key, the driver and the run request
    /// handle it without naming the stage.
    public let needs: [StageNeed]
    /// How the stage's input may be split across processes (Slurm array tasks).
    public let sharding: Sharding
    /// How its shards' stage-specific figures become one (default: numbers summed).
    public let mergeExtra: ShardMerge.ExtraMerge

    public init(
        name: String, version: Int, summary: String, input: Input, output: Output, sharding: Sharding = .records,
        mergeExtra: @escaping ShardMerge.ExtraMerge = { shards, _ in ShardMerge.sumFigures(shards) },
        roles: [BackendRole] = [], needs: [StageNeed] = [], parameters: [StageParameter]
    ) {
        self.sharding = sharding
        self.mergeExtra = mergeExtra
        self.roles = roles
        self.needs = needs
        self.name = name
        self.version = version
        self.summary = summary
        self.input = input
        self.output = output
        self.parameters = parameters
    }

    /// The kind of the records written, or nil for a stage that writes a folder.
    public var outputKind: String? {
        if case .records(let kind) = output { return kind }
        return nil
    }

    public var writesFolder: Bool { output == .folder }

    /// The record kinds read, empty for a stage that reads a data file.
    public var inputKinds: [String] {
        if case .records(let kinds) = input { return kinds }
        return []
    }

    public func role(_ name: String) -> BackendRole? { roles.first { $0.name == name } }

    public var executableName: String { "leakless-\(name)" }

    public func parameter(_ name: String) -> StageParameter? {
        parameters.first { $0.name == name }
    }

    /// Every parameter at its default value.
    public var defaults: [String: JSONValue] {
        Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.defaultValue) })
    }
}

/// A stage parameter declared once, on the property of the stage's `Parameters` that holds it:
/// its pipeline.yaml name, type, default and meaning. The definition's list is collected from
/// these (`StageParameter.declared(in: Parameters())`); a decoded value carries no declaration.
@propertyWrapper
public struct Parameter<Value: Decodable & Sendable>: Decodable, Sendable {
    private var value: Value?
    let declaration: StageParameter?

    public init(_ name: String, _ type: ParameterType, default defaultValue: JSONValue, _ help: String) {
        self.init(StageParameter(name, type, default: defaultValue, help))
    }

    /// A parameter declared elsewhere (a mapping of its own settings). It holds its default
    /// when that reads as its type, so a value made in code starts from the defaults.
    public init(_ declaration: StageParameter) {
        self.declaration = declaration
        value = try? JSONValue.array([declaration.defaultValue]).decode([Value].self).first
    }

    public init(from decoder: Decoder) throws {
        value = try decoder.singleValueContainer().decode(Value.self)
        declaration = nil
    }

    /// The value read from pipeline.yaml (defaults filled in); only a declaration whose default
    /// does not read as its type (a mapping declared elsewhere) has none.
    public var wrappedValue: Value {
        get {
            guard let value else { preconditionFailure("the declaration of '\(declaration?.name ?? "")' holds no value") }
            return value
        }
        set { value = newValue }
    }
}

extension Parameter: Encodable where Value: Encodable {
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue)
    }
}

/// Two parameters are equal when their values are (a declaration is not part of the value).
extension Parameter: Equatable where Value: Equatable {
    public static func == (left: Parameter, right: Parameter) -> Bool { left.value == right.value }
}

private protocol DeclaredParameter {
    var declaredParameter: StageParameter? { get }
}

extension Parameter: DeclaredParameter {
    fileprivate var declaredParameter: StageParameter? { declaration }
}

extension StageParameter {
    /// The parameters declared on `parameters`' properties (`@Parameter`), in their order.
    public static func declared(in parameters: Any) -> [StageParameter] {
        Mirror(reflecting: parameters).children.compactMap { ($0.value as? DeclaredParameter)?.declaredParameter }
    }
}
