import Foundation
import Leakless
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
        var random = SeededRandom(seed: 0, salt: prompt)
        return value(schema, name: "reply", random: &random)
    }

    private static func value(_ schema: JSONValue, name: String, random: inout SeededRandom) -> JSONValue {
        if let options = schema["enum"]?.arrayValue, !options.isEmpty {
            return options[Int(random.next() % UInt64(options.count))]
        }
        let types = schema["type"]?.stringArray ?? [schema["type"]?.stringValue ?? (schema["properties"] != nil ? "object" : "string")]
        switch types.first(where: { $0 != "null" }) ?? "null" {
        case "object":
            var fields: [String: JSONValue] = [:]
            for (field, fieldSchema) in (schema["properties"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
                fields[field] = value(fieldSchema, name: field, random: &random)
            }
            for field in schema["required"]?.stringArray ?? [] where fields[field] == nil {
                fields[field] = .string("stand-in \(field)")
            }
            return .object(fields)
        case "array":
            // One item, or as many as minItems asks for (none where maxItems is 0).
            let count = max(Int(schema["minItems"]?.intValue ?? 0), min(1, Int(schema["maxItems"]?.intValue ?? 1)))
            return .array((0..<count).map { index in value(schema["items"] ?? [:], name: "\(name) \(index + 1)", random: &random) })
        case "boolean":
            return .bool(random.next() % 2 == 0)
        case "integer", "number":
            let low = schema["minimum"]?.doubleValue ?? 0
            let high = schema["maximum"]?.doubleValue ?? max(low, 1)
            let fraction = Double(random.next() % 1001) / 1000
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
