import Foundation

/// Reading values back out of a rendered prompt: how the local stand-in server answers each
/// stage's prompts with replies that fit them.
enum PromptText {
    /// The rest of the last line that starts with `marker`, trimmed.
    static func line(after marker: String, in prompt: String) -> String {
        guard let range = prompt.range(of: marker, options: .backwards) else { return "" }
        return prompt[range.upperBound...].prefix(while: { $0 != "\n" }).trimmingCharacters(in: .whitespaces)
    }

    /// The first double-quoted text after `marker` (or the rest of its line when none is quoted).
    static func quoted(after marker: String, in prompt: String) -> String {
        guard let range = prompt.range(of: marker) else { return "" }
        let rest = prompt[range.upperBound...]
        guard let open = rest.firstIndex(of: "\"") else { return String(rest.prefix(while: { $0 != "\n" })) }
        let after = rest[rest.index(after: open)...]
        return String(after.prefix(while: { $0 != "\"" }))
    }
}
