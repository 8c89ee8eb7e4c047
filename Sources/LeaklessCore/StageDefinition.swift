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

    public var description: String {
        switch self {
        case .integer(let range): return "an integer from \(range.lowerBound) to \(range.upperBound)"
        case .number(let range): return "a number from \(range.lowerBound) to \(range.upperBound)"
        case .boolean: return "true or false"
        case .string: return "a string"
        case .choice(let options): return "one of " + options.map { "'\($0)'" }.joined(separator: ", ")
        case .stringList: return "a list of strings"
        case .path: return "a path"
        }
    }

    /// The value if it has this type (an integer is accepted where a number is asked for).
    public func accept(_ value: JSONValue) -> JSONValue? {
        switch (self, value) {
        case (.integer(let range), .int(let number)): return range.contains(number) ? value : nil
        case (.number(let range), _):
            guard let number = value.doubleValue, range.contains(number) else { return nil }
            return .double(number)
        case (.boolean, .bool): return value
        case (.string, .string), (.path, .string): return value
        case (.choice(let options), .string(let text)): return options.contains(text) ? value : nil
        case (.stringList, _): return value.stringArray != nil ? value : nil
        default: return nil
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

/// A stage as the driver knows it: its name, version, parameters and what it reads and writes.
public struct StageDefinition: Sendable {
    public enum Input: Sendable, Equatable {
        /// Reads a data file named by a parameter (extract reads the taxonomy).
        case parameter(String)
        /// Reads the previous stage's records, which must be of one of these kinds.
        case records([String])
    }

    public let name: String
    /// Bump when the stage's code changes what it writes: it changes the stage key.
    public let version: Int
    public let summary: String
    public let input: Input
    /// The `kind` of the records written; nil for a stage that writes a folder (export).
    public let outputKind: String?
    public let parameters: [StageParameter]
    /// The backends the stage works through, each under its own key in pipeline.yaml.
    public let roles: [BackendRole]

    public init(
        name: String, version: Int, summary: String, input: Input, outputKind: String?, roles: [BackendRole] = [],
        parameters: [StageParameter]
    ) {
        self.roles = roles
        self.name = name
        self.version = version
        self.summary = summary
        self.input = input
        self.outputKind = outputKind
        self.parameters = parameters
    }

    public var usesBackend: Bool { !roles.isEmpty }

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
