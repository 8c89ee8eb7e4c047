import LeaklessCore
import Foundation

/// A set of phrases matched against token sequences by stem; longest match wins.
public struct PhraseMatcher: Sendable {
    public struct Match: Sendable, Equatable {
        /// The phrase as it was given.
        public let phrase: String
        /// Token indices of the match.
        public let tokens: Range<Int>
        public let tag: String
    }

    private struct Phrase: Sendable {
        let keys: [UInt64]
        let stems: [String]
        let phrase: String
        let tag: String
    }

    /// The phrases that start with each first stem, longest first, found by its key.
    private var lists: [[Phrase]] = []
    private var firsts = StemIndex()

    public init() {}

    public init(_ phrases: [String], tag: String = "") {
        for phrase in phrases { add(phrase, tag: tag) }
    }

    public mutating func add(_ phrase: String, tag: String) {
        let tokens = Text.tokens(phrase)
        guard let first = tokens.first else { return }
        let position: Int
        if let known = firsts[first.key] {
            position = known
        } else {
            position = lists.count
            lists.append([])
            firsts.set(first.key, to: position)
        }
        lists[position].append(Phrase(keys: tokens.map(\.key), stems: tokens.map(\.stem), phrase: phrase, tag: tag))
        lists[position].sort { $0.keys.count > $1.keys.count }
    }

    public var isEmpty: Bool { lists.isEmpty }

    /// Non-overlapping matches, scanning left to right and preferring the longest phrase.
    public func matches(in tokens: [Token]) -> [Match] {
        var result: [Match] = []
        var index = 0
        while index < tokens.count {
            var matched: Match?
            if let position = firsts[tokens[index].key] {
                for candidate in lists[position] {
                    let end = index + candidate.keys.count
                    guard end <= tokens.count else { continue }
                    var same = true
                    for offset in 0..<candidate.keys.count {
                        let token = tokens[index + offset]
                        // The key finds it; the stem confirms it, so a hash collision never matches.
                        if token.key != candidate.keys[offset] || token.stem != candidate.stems[offset] {
                            same = false
                            break
                        }
                    }
                    if same {
                        matched = Match(phrase: candidate.phrase, tokens: index..<end, tag: candidate.tag)
                        break
                    }
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
