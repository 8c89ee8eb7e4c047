import Foundation
import LeaklessCore

/// Reading JSON out of what a model said: the whole reply, a fenced code block, or the first
/// balanced object or array in the text around it.
public enum StructuredReply {
    public static func extractJSON(_ reply: String) -> JSONValue? {
        guard reply.utf8.count <= maximumReplyBytes else { return nil }
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
        // A balanced {...} or [...] that parses: the outermost ones first, then (in prose) those
        // one or two levels inside a span that does not parse, in order. One pass finds every span, and each
        // byte is parsed at most three times, so a reply of nested brackets costs linear time.
        // A reply that starts as JSON and is broken inside (a lone surrogate, a missing brace) is
        // broken: a piece nested in it that happens to parse is not the answer.
        let searchDepth = trimmed.first == "{" || trimmed.first == "[" ? 1 : 3
        let bytes = Array(trimmed.utf8)
        let spans = bracketSpans(bytes, maxDepth: searchDepth)
        for depth in 0..<searchDepth {
            for span in spans where span.depth == depth {
                if let value = parse(String(decoding: bytes[span.start...span.end], as: UTF8.self)) { return value }
            }
        }
        return nil
    }

    /// What is wrong with a reply that is meant to be all JSON (it starts with `{` or `[`), or nil.
    public static func syntaxProblem(_ reply: String) -> String? {
        let trimmed = reply.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let first = trimmed.first, first == "{" || first == "[" else { return nil }
        guard trimmed.utf8.count <= maximumReplyBytes else { return "the reply is longer than \(maximumReplyBytes >> 20) MiB" }
        do {
            _ = try JSONParser.parse(bytes: Array(trimmed.utf8))
            return nil
        } catch {
            return "the reply is not valid JSON: \(error)"
        }
    }

    /// The longest reply read for JSON; a longer one is not a structured answer.
    public static let maximumReplyBytes = 4 << 20

    private static func parse(_ text: String) -> JSONValue? {
        guard let first = text.first, first == "{" || first == "[" else { return nil }
        return try? JSONParser.parse(bytes: Array(text.utf8))
    }

    /// The balanced bracket spans that start at a nesting depth below `maxDepth`, in one pass.
    /// Outside every bracket a quote is prose (it starts no string); inside, strings are skipped.
    private static func bracketSpans(_ bytes: [UInt8], maxDepth: Int) -> [(start: Int, end: Int, depth: Int)] {
        var spans: [(start: Int, end: Int, depth: Int)] = []
        var open: [Int] = []
        var inString = false
        var escaped = false
        for (index, byte) in bytes.enumerated() {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            } else if byte == UInt8(ascii: "\"") {
                inString = !open.isEmpty
            } else if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                open.append(index)
            } else if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
                guard let start = open.popLast() else { continue }
                if open.count < maxDepth { spans.append((start, index, open.count)) }
            }
        }
        return spans.sorted { $0.start < $1.start }
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
