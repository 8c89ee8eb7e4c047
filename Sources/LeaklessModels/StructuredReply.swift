import Foundation
import LeaklessCore

/// Reading JSON out of what a model said: the whole reply, a fenced code block, or the first
/// balanced object or array in the text around it.
public enum StructuredReply {
    public static func extractJSON(_ reply: String) -> JSONValue? {
        let trimmed = reply.trimmingCharacters(in: .whitespacesAndNewlines)
        if let value = parse(trimmed) { return value }
        var candidates: [Substring] = []
        // ```json ... ``` blocks, in order.
        var rest = trimmed[...]
        while let open = rest.range(of: "```") {
            let afterFence = rest[open.upperBound...]
            let bodyStart = afterFence.firstIndex(of: "\n").map { afterFence.index(after: $0) } ?? afterFence.startIndex
            guard let close = afterFence[bodyStart...].range(of: "```") else { break }
            candidates.append(afterFence[bodyStart..<close.lowerBound])
            rest = afterFence[close.upperBound...]
        }
        for candidate in candidates {
            if let value = parse(candidate.trimmingCharacters(in: .whitespacesAndNewlines)) { return value }
        }
        // The first balanced {...} or [...] that parses.
        let bytes = Array(trimmed.utf8)
        var start = 0
        while start < bytes.count {
            if bytes[start] == UInt8(ascii: "{") || bytes[start] == UInt8(ascii: "["),
                let end = balancedEnd(bytes, from: start),
                let value = parse(String(decoding: bytes[start...end], as: UTF8.self))
            {
                return value
            }
            start += 1
        }
        return nil
    }

    private static func parse(_ text: String) -> JSONValue? {
        guard let first = text.first, first == "{" || first == "[" else { return nil }
        return try? JSONParser.parse(bytes: Array(text.utf8))
    }

    /// The index of the bracket closing the one at `start`, skipping strings.
    private static func balancedEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        var depth = 0
        var inString = false
        var escaped = false
        var index = start
        while index < bytes.count {
            let byte = bytes[index]
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            } else if byte == UInt8(ascii: "\"") {
                inString = true
            } else if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                depth += 1
            } else if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
                depth -= 1
                if depth == 0 { return index }
            }
            index += 1
        }
        return nil
    }

    /// Openings models use to decline. Checked only on replies with no usable JSON, so a JSON
    /// answer that happens to apologise is not a refusal.
    static let refusalOpenings = [
        "i'm sorry", "i am sorry", "sorry, ", "i can't", "i cannot", "i can not", "i won't", "i will not",
        "i'm not able", "i am not able", "i'm unable", "i am unable", "as an ai", "i must decline",
        "i'm not comfortable", "i apologize", "i apologise", "unfortunately, i can",
    ]

    public static func looksLikeRefusal(_ reply: String) -> Bool {
        let text = reply.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
            .replacingOccurrences(of: "\u{2019}", with: "'")
        guard !text.isEmpty else { return false }
        let opening = String(text.prefix(80))
        return refusalOpenings.contains { opening.hasPrefix($0) }
    }
}
