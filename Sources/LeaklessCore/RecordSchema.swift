/// The shape a stage promises for the records it writes (`stages/<stage>/schema.json`), checked
/// on every record before it is written. A subset of JSON Schema: `type` (one or a list),
/// `required`, `properties`, `additionalProperties` (boolean), `items`, `enum`, `minLength`,
/// `maxLength`, `minItems`, `maxItems`, `minimum`, `maximum`. (A server that constrains its
/// decoding to a reply schema, as llama.cpp's and vLLM's do, stops a looping model at the bounds.)
public struct RecordSchema: Sendable {
    public let schema: JSONValue

    public init(_ schema: JSONValue) { self.schema = schema }

    public static func load(path: String) throws -> RecordSchema {
        do {
            return RecordSchema(try JSONParser.parse(bytes: try FileSystem.read(path)))
        } catch let error as JSONParser.SyntaxError {
            throw LocatedError(path: path, line: nil, message: "invalid JSON schema: \(error)")
        }
    }

    /// The first violation as "at PATH: problem", or nil when the value conforms.
    public func violation(in value: JSONValue) -> String? {
        check(value, against: schema, at: "$")
    }

    private func check(_ value: JSONValue, against schema: JSONValue, at path: String) -> String? {
        guard case .object(let rules) = schema else { return nil }
        if let types = rules["type"] {
            let allowed = types.stringArray ?? [types.stringValue ?? ""]
            if !allowed.contains(where: { matches(value, type: $0) }) {
                return "at \(path): expected \(allowed.joined(separator: " or ")), found \(value.typeName)"
            }
        }
        if let options = rules["enum"]?.arrayValue, !options.contains(value) {
            return "at \(path): \(JSONWriter.canonical(value)) is not one of \(JSONWriter.canonical(.array(options)))"
        }
        switch value {
        case .string(let text):
            if let minimum = rules["minLength"]?.intValue, text.count < minimum {
                return "at \(path): shorter than \(minimum) characters"
            }
            if let maximum = rules["maxLength"]?.intValue, text.count > maximum {
                return "at \(path): longer than \(maximum) characters"
            }
        case .int, .double:
            let number = value.doubleValue!
            if let minimum = rules["minimum"]?.doubleValue, number < minimum { return "at \(path): below \(minimum)" }
            if let maximum = rules["maximum"]?.doubleValue, number > maximum { return "at \(path): above \(maximum)" }
        case .array(let items):
            if let minimum = rules["minItems"]?.intValue, items.count < minimum {
                return "at \(path): fewer than \(minimum) items"
            }
            if let maximum = rules["maxItems"]?.intValue, items.count > maximum {
                return "at \(path): more than \(maximum) items"
            }
            if let itemSchema = rules["items"] {
                for (index, item) in items.enumerated() {
                    if let problem = check(item, against: itemSchema, at: "\(path)[\(index)]") { return problem }
                }
            }
        case .object(let fields):
            for name in rules["required"]?.stringArray ?? [] where fields[name] == nil {
                return "at \(path): missing required field '\(name)'"
            }
            let properties = rules["properties"]?.objectValue ?? [:]
            for (name, fieldValue) in fields.sorted(by: { $0.key < $1.key }) {
                if let fieldSchema = properties[name] {
                    if let problem = check(fieldValue, against: fieldSchema, at: "\(path).\(name)") { return problem }
                } else if rules["additionalProperties"] == .bool(false) {
                    return "at \(path): unexpected field '\(name)'"
                }
            }
        default:
            break
        }
        return nil
    }

    private func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object): return true
        case ("integer", .int): return true
        case ("integer", .double(let number)): return number.rounded() == number
        case ("number", .int), ("number", .double): return true
        default: return false
        }
    }
}
