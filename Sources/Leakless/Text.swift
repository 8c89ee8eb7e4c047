import Foundation

/// A word of a text with where it stands, so matches can be marked or replaced in the original.
public struct Token: Sendable, Equatable {
    public let text: String
    /// Lower case, inflection removed: what matching compares.
    public let stem: String
    public let range: Range<String.Index>
}

public enum Text {
    /// Words of `text`: letters and digits, with inner apostrophes and hyphens kept ("someone's",
    /// "self-harm").
    public static func tokens(_ text: String) -> [Token] {
        var tokens: [Token] = []
        var index = text.startIndex
        while index < text.endIndex {
            guard isWordCharacter(text[index]) else {
                index = text.index(after: index)
                continue
            }
            let start = index
            var end = index
            while end < text.endIndex {
                let character = text[end]
                if isWordCharacter(character) {
                    end = text.index(after: end)
                } else if character == "'" || character == "’" || character == "-",
                    text.index(after: end) < text.endIndex, isWordCharacter(text[text.index(after: end)])
                {
                    end = text.index(after: end)
                } else {
                    break
                }
            }
            let word = String(text[start..<end])
            tokens.append(Token(text: word, stem: stem(word), range: start..<end))
            index = end
        }
        return tokens
    }

    private static func isWordCharacter(_ character: Character) -> Bool {
        character.isLetter || character.isNumber
    }

    /// A light English stemmer: lower case, possessive, plural, -ing and -ed endings removed,
    /// so "guns", "gun's", "shooting" and "shoots" meet "gun" and "shoot". Deliberately
    /// conservative: it must treat a lexicon term and its inflections alike, no more.
    public static func stem(_ word: String) -> String {
        var text = word.lowercased().replacingOccurrences(of: "’", with: "'")
        if text.hasSuffix("'s") { text.removeLast(2) }
        return dropFinalE(undouble(stripSuffix(text)))
    }

    private static func stripSuffix(_ text: String) -> String {
        let count = text.count
        func drop(_ n: Int) -> String { String(text.dropLast(n)) }
        if count > 4, text.hasSuffix("ies") { return drop(3) + "y" }
        if count > 4, text.hasSuffix("sses") { return drop(2) }
        if count > 3, text.hasSuffix("es"), ["sh", "ch", "x", "z"].contains(where: { drop(2).hasSuffix($0) }) {
            return drop(2)
        }
        if count > 3, text.hasSuffix("s"), !text.hasSuffix("ss"), !text.hasSuffix("us"), !text.hasSuffix("is") {
            return drop(1)
        }
        if count > 5, text.hasSuffix("ing") { return drop(3) }
        if count > 4, text.hasSuffix("ed") { return drop(2) }
        return text
    }

    /// "stabb" -> "stab", "shopp" -> "shop"; "kill", "pass" and "buzz" stay.
    private static func undouble(_ stem: String) -> String {
        guard stem.count > 3, let last = stem.last, stem.dropLast().last == last,
            !["l", "s", "z", "e", "o"].contains(last)
        else { return stem }
        return String(stem.dropLast())
    }

    /// "smoke", "smoked" and "smoking" all end as "smok": the silent e goes everywhere.
    private static func dropFinalE(_ stem: String) -> String {
        stem.count > 3 && stem.hasSuffix("e") && !stem.hasSuffix("ee") ? String(stem.dropLast()) : stem
    }

    /// Lower case, words only, single spaces: two queries that differ in case, spacing or
    /// punctuation normalise alike.
    public static func normalized(_ text: String) -> String {
        tokens(text).map { $0.text.lowercased() }.joined(separator: " ")
    }
}

/// A set of phrases matched against token sequences by stem; longest match wins.
public struct PhraseMatcher: Sendable {
    public struct Match: Sendable, Equatable {
        /// The phrase as it was given.
        public let phrase: String
        /// Token indices of the match.
        public let tokens: Range<Int>
        public let tag: String
    }

    private var phrases: [String: [(stems: [String], phrase: String, tag: String)]] = [:]

    public init() {}

    public init(_ phrases: [String], tag: String = "") {
        for phrase in phrases { add(phrase, tag: tag) }
    }

    public mutating func add(_ phrase: String, tag: String) {
        let stems = Text.tokens(phrase).map(\.stem)
        guard let first = stems.first else { return }
        phrases[first, default: []].append((stems, phrase, tag))
        phrases[first]!.sort { $0.stems.count > $1.stems.count }
    }

    public var isEmpty: Bool { phrases.isEmpty }

    /// Non-overlapping matches, scanning left to right and preferring the longest phrase.
    public func matches(in tokens: [Token]) -> [Match] {
        var result: [Match] = []
        var index = 0
        while index < tokens.count {
            var matched: Match?
            for candidate in phrases[tokens[index].stem] ?? [] {
                let end = index + candidate.stems.count
                guard end <= tokens.count else { continue }
                if zip(candidate.stems, tokens[index..<end]).allSatisfy({ $0 == $1.stem }) {
                    matched = Match(phrase: candidate.phrase, tokens: index..<end, tag: candidate.tag)
                    break
                }
            }
            if let matched {
                result.append(matched)
                index = matched.tokens.upperBound
            } else {
                index += 1
            }
        }
        return result
    }

    public func matches(in text: String) -> [Match] { matches(in: Text.tokens(text)) }
}
