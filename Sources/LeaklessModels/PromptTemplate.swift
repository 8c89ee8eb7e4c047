import Foundation
import LeaklessCore

/// A prompt in `stages/<stage>/NAME.prompt`: plain text in sections that start with a line
/// `[system]`, `[user]` or `[assistant]` (the last two may repeat, for few-shot examples), with
/// named slots written `{{slot}}`. Beside it, `NAME.reply.json` is the JSON schema the reply
/// must meet, when the prompt expects JSON.
public struct PromptTemplate: Sendable {
    public struct Section: Sendable {
        public let role: String
        public let text: String
        public let line: Int
    }

    public let path: String
    public let sections: [Section]
    public let slots: Set<String>
    /// The schema of the expected reply, or nil for free text.
    public let replySchema: JSONValue?
    /// Identifies the template and its schema in request-cache keys.
    public let hash: ContentHash
    /// The template's text, as written.
    let text: String

    public var name: String {
        let file = FileSystem.lastComponent(of: path)
        return file.hasSuffix(".prompt") ? String(file.dropLast(7)) : file
    }

    public init(path: String, text: String, replySchema: JSONValue?) throws {
        self.path = path
        var sections: [Section] = []
        var role: String?
        var lines: [Substring] = []
        var startLine = 0
        func close() {
            if let role {
                var body = lines.joined(separator: "\n")
                while body.hasSuffix("\n") { body.removeLast() }
                while body.hasPrefix("\n") { body.removeFirst() }
                sections.append(Section(role: role, text: body, line: startLine))
            }
        }
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if ["[system]", "[user]", "[assistant]"].contains(trimmed) {
                close()
                role = String(trimmed.dropFirst().dropLast())
                lines = []
                startLine = index + 1
            } else if role == nil {
                guard trimmed.isEmpty else {
                    throw LocatedError(path: path, line: index + 1, message: "text before the first section: start with a line [system] or [user]")
                }
            } else {
                lines.append(line)
            }
        }
        close()
        guard sections.contains(where: { $0.role == "user" }) else {
            throw LocatedError(path: path, line: nil, message: "a prompt needs a [user] section")
        }
        if let index = sections.firstIndex(where: { $0.role == "system" }), index != 0 {
            throw LocatedError(path: path, line: sections[index].line, message: "[system] must be the first section")
        }
        var slots = Set<String>()
        for section in sections {
            for slot in try Self.slotNames(in: section.text, path: path, line: section.line) { slots.insert(slot) }
        }
        self.sections = sections
        self.slots = slots
        self.replySchema = replySchema
        self.text = text
        var hashed = Array(text.utf8)
        if let replySchema { hashed += Array(JSONWriter.canonical(replySchema).utf8) }
        self.hash = ContentHash(of: hashed)
    }

    /// The same prompt with more rules on some properties of its reply schema (an `enum` of the
    /// names a reply may take, known only at run time), so a server that constrains decoding to
    /// the schema can only give one of them.
    public func narrowing(_ rules: [String: [String: JSONValue]]) throws -> PromptTemplate {
        guard !rules.isEmpty, var schema = replySchema?.objectValue, var properties = schema["properties"]?.objectValue else { return self }
        for (name, extra) in rules {
            var property = properties[name]?.objectValue ?? [:]
            for (key, value) in extra { property[key] = value }
            properties[name] = .object(property)
        }
        schema["properties"] = .object(properties)
        return try PromptTemplate(path: path, text: text, replySchema: .object(schema))
    }

    /// Loads `folder/NAME.prompt` and, when present, `folder/NAME.reply.json`.
    public static func load(folder: String, name: String) throws -> PromptTemplate {
        let path = FileSystem.join(folder, "\(name).prompt")
        guard FileSystem.exists(path) else {
            throw LocatedError(path: path, line: nil, message: "prompt template not found")
        }
        let text = String(decoding: try FileSystem.read(path), as: UTF8.self)
        let schemaPath = FileSystem.join(folder, "\(name).reply.json")
        var schema: JSONValue?
        if FileSystem.exists(schemaPath) {
            do {
                schema = try JSONParser.parse(bytes: try FileSystem.read(schemaPath))
            } catch let error as JSONParser.SyntaxError {
                throw LocatedError(path: schemaPath, line: nil, message: "invalid JSON schema: \(error)")
            }
        }
        return try PromptTemplate(path: path, text: text, replySchema: schema)
    }

    private static func slotNames(in text: String, path: String, line: Int) throws -> [String] {
        var names: [String] = []
        var rest = text[...]
        while let open = rest.range(of: "{{") {
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                throw LocatedError(path: path, line: line, message: "'{{' without a closing '}}'")
            }
            let name = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw LocatedError(path: path, line: line, message: "slot names are letters, digits and _: '{{\(name)}}'")
            }
            names.append(name)
            rest = rest[close.upperBound...]
        }
        return names
    }

    /// The messages with every slot filled (a slot without a value is an error naming it), and
    /// `images` attached to the last user message.
    public func render(_ values: [String: String], images: [ImageAttachment] = []) throws -> [ChatMessage] {
        if let missing = slots.subtracting(values.keys).sorted().first {
            throw LocatedError(path: path, line: nil, message: "no value for the slot {{\(missing)}}")
        }
        var messages = sections.map { section in
            var text = ""
            var rest = section.text[...]
            while let open = rest.range(of: "{{"), let close = rest[open.upperBound...].range(of: "}}") {
                text += rest[..<open.lowerBound]
                text += values[rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)] ?? ""
                rest = rest[close.upperBound...]
            }
            text += rest
            return ChatMessage(role: section.role, text: text)
        }
        if !images.isEmpty, let last = messages.lastIndex(where: { $0.role == "user" }) { messages[last].images = images }
        return messages
    }
}

