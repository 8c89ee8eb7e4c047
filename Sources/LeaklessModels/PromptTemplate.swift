import Foundation
import LeaklessCore

/// A prompt in `stages/<stage>/NAME.prompt`: plain text in sections that start with a line
/// `[system]`, `[user]` or `[assistant]` (the last two may repeat, for few-shot examples), with
/// named slots written `{{slot}}`; when the prompt expects JSON, a last section `[reply]` holds
/// the JSON schema the reply must meet (sent as the request's `response_format` and checked on
/// every reply).
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
    /// The template's text before its `[reply]` section.
    let text: String

    public var name: String {
        let file = FileSystem.lastComponent(of: path)
        return file.hasSuffix(".prompt") ? String(file.dropLast(7)) : file
    }

    /// A template from the text of a prompt file (its reply schema in its `[reply]` section).
    public init(path: String, text: String) throws {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        var schema: JSONValue?
        if let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "[reply]" }) {
            let body = lines[(start + 1)...].joined(separator: "\n")
            if let later = lines[(start + 1)...].firstIndex(where: { ["[system]", "[user]", "[assistant]", "[reply]"].contains($0.trimmingCharacters(in: .whitespaces)) }) {
                throw LocatedError(path: path, line: later + 1, message: "[reply] must be the last section")
            }
            do {
                schema = try JSONParser.parse(bytes: Array(body.utf8))
            } catch let error as JSONParser.SyntaxError {
                throw LocatedError(path: path, line: start + 1, message: "[reply]: not a JSON schema: \(error)")
            }
            guard schema?.objectValue != nil else {
                throw LocatedError(path: path, line: start + 1, message: "[reply]: the reply schema must be a JSON object")
            }
            lines = Array(lines[..<start])
            while let last = lines.last, last.trimmingCharacters(in: .whitespaces).isEmpty { lines.removeLast() }
            lines.append("")
        }
        try self.init(path: path, prompt: lines.joined(separator: "\n"), replySchema: schema)
    }

    private init(path: String, prompt text: String, replySchema: JSONValue?) throws {
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
        return try PromptTemplate(path: path, prompt: text, replySchema: .object(schema))
    }

    /// Loads `folder/NAME.prompt`.
    public static func load(folder: String, name: String) throws -> PromptTemplate {
        let path = FileSystem.join(folder, "\(name).prompt")
        guard FileSystem.exists(path) else {
            throw LocatedError(path: path, line: nil, message: "prompt template not found")
        }
        let schemaPath = FileSystem.join(folder, "\(name).reply.json")
        if FileSystem.exists(schemaPath) {
            throw LocatedError(path: schemaPath, line: nil, message: "a reply schema goes in its prompt's last section, after a line [reply] (move it into \(name).prompt)")
        }
        return try PromptTemplate(path: path, text: String(decoding: try FileSystem.read(path), as: UTF8.self))
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

