import Foundation
import LeaklessCore

/// The stand-in's answer to a prompt no stage replier recognises but whose request names its
/// reply schema (`response_format` `json_schema`): a value that meets the schema, chosen from
/// the prompt's hash, so a new model stage runs against the stand-in before it has answers of
/// its own in `StageReplies`.
enum SchemaReply {
    /// The schema a chat request asks its reply to meet, if it names one.
    static func schema(ofRequest body: JSONValue) -> JSONValue? {
        guard let format = body["response_format"], format["type"]?.stringValue == "json_schema" else { return nil }
        return format["json_schema"]?["schema"]
    }

    /// A value meeting `schema`, the same for the same prompt.
    static func value(meeting schema: JSONValue, prompt: String) -> JSONValue {
        var seed = UInt64(ContentHash(ofString: prompt).hex.prefix(16), radix: 16) ?? 0
        return value(schema, name: "reply", seed: &seed)
    }

    private static func next(_ seed: inout UInt64) -> UInt64 {
        // splitmix64
        seed &+= 0x9E37_79B9_7F4A_7C15
        var z = seed
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private static func value(_ schema: JSONValue, name: String, seed: inout UInt64) -> JSONValue {
        if let options = schema["enum"]?.arrayValue, !options.isEmpty {
            return options[Int(next(&seed) % UInt64(options.count))]
        }
        let types = schema["type"]?.stringArray ?? [schema["type"]?.stringValue ?? (schema["properties"] != nil ? "object" : "string")]
        switch types.first(where: { $0 != "null" }) ?? "null" {
        case "object":
            var fields: [String: JSONValue] = [:]
            for (field, fieldSchema) in (schema["properties"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
                fields[field] = value(fieldSchema, name: field, seed: &seed)
            }
            for field in schema["required"]?.stringArray ?? [] where fields[field] == nil {
                fields[field] = .string("stand-in \(field)")
            }
            return .object(fields)
        case "array":
            let least = Int(schema["minItems"]?.intValue ?? 1)
            let most = Int(schema["maxItems"]?.intValue ?? Int64(max(least, 3)))
            let count = max(least, min(most, 1))
            return .array((0..<count).map { index in value(schema["items"] ?? [:], name: "\(name) \(index + 1)", seed: &seed) })
        case "boolean":
            return .bool(next(&seed) % 2 == 0)
        case "integer", "number":
            let low = schema["minimum"]?.doubleValue ?? 0
            let high = schema["maximum"]?.doubleValue ?? max(low, 1)
            let fraction = Double(next(&seed) % 1001) / 1000
            if types.contains("integer") { return .int(Int64((low + (high - low) * fraction).rounded(.down))) }
            return .double(((low + (high - low) * fraction) * 1000).rounded() / 1000)
        case "string":
            var text = "stand-in \(name.replacingOccurrences(of: "_", with: " "))"
            let least = Int(schema["minLength"]?.intValue ?? 0)
            while text.count < least { text += " …" }
            if let most = schema["maxLength"]?.intValue { text = String(text.prefix(Int(most))) }
            return .string(text)
        default:
            return .null
        }
    }
}
