import LeaklessCore
import Foundation

/// A word of a text with where it stands, so matches can be marked or replaced in the original.
public struct Token: Sendable, Equatable {
    public let text: String
    /// Lower case, inflection removed: what matching compares.
    public let stem: String
    public let range: Range<String.Index>
    /// The stem's 64-bit hash: what the phrase and stop-word tables look up, with no String hashing.
    public let key: UInt64

    public init(text: String, stem: String, range: Range<String.Index>) {
        self.text = text
        self.stem = stem
        self.range = range
        key = Text.key(stem)
    }
}

public enum Text {
    /// Words of `text`: letters and digits, with inner apostrophes and hyphens kept ("someone's",
    /// "self-harm"). Scanned by Unicode scalar, ASCII without a property look-up; a combining
    /// mark inside a word stays in it.
    public static func tokens(_ text: String) -> [Token] {
        var tokens: [Token] = []
        let scalars = text.unicodeScalars
        var index = scalars.startIndex
        let end = scalars.endIndex
        while index < end {
            guard isWordScalar(scalars[index]) else {
                index = scalars.index(after: index)
                continue
            }
            let start = index
            var cursor = scalars.index(after: index)
            while cursor < end {
                let scalar = scalars[cursor]
                if isWordScalar(scalar) || isMark(scalar) {
                    cursor = scalars.index(after: cursor)
                } else if scalar == "'" || scalar == "\u{2019}" || scalar == "-" {
                    let next = scalars.index(after: cursor)
                    guard next < end, isWordScalar(scalars[next]) else { break }
                    cursor = next
                } else {
                    break
                }
            }
            let word = String(text.unicodeScalars[start..<cursor])
            tokens.append(Token(text: word, stem: stem(word), range: start..<cursor))
            index = cursor
        }
        return tokens
    }

    @inline(__always)
    private static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        if value < 0x80 {
            return (value >= 0x61 && value <= 0x7A) || (value >= 0x41 && value <= 0x5A) || (value >= 0x30 && value <= 0x39)
        }
        return scalar.properties.isAlphabetic || scalar.properties.numericType != nil
    }

    private static func isMark(_ scalar: Unicode.Scalar) -> Bool {
        guard scalar.value >= 0x300 else { return false }
        switch scalar.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }

    /// A stem's key in the phrase and stop-word tables.
    @inline(__always)
    public static func key(_ stem: String) -> UInt64 { ContentHash.xxh64(stem) }

    /// A light English stemmer: lower case, possessive, plural, -ing and -ed endings removed,
    /// so "guns", "gun's", "shooting" and "shoots" meet "gun" and "shoot". Deliberately
    /// conservative: it must treat a lexicon term and its inflections alike, no more.
    public static func stem(_ word: String) -> String {
        if let ascii = asciiStem(word) { return ascii }
        var text = word.lowercased()
        // The typographic apostrophe as the plain one (a scan, not a Foundation replace per word).
        if text.unicodeScalars.contains("\u{2019}") { text = String(text.map { $0 == "’" ? "'" : $0 }) }
        if text.hasSuffix("'s") { text.removeLast(2) }
        return dropFinalE(undouble(stripSuffix(text)))
    }

    /// The same stemmer over the bytes of an ASCII word (most words): no Unicode machinery, and
    /// no allocation for a word that fits the stack buffer.
    private static func asciiStem(_ word: String) -> String? {
        let length = word.utf8.count
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(length, 1)) { buffer -> String? in
            var count = 0
            for byte in word.utf8 {
                guard byte < 0x80 else { return nil }
                buffer[count] = byte >= 0x41 && byte <= 0x5A ? byte + 32 : byte
                count += 1
            }
            func ends(_ suffix: StaticString) -> Bool {
                let size = suffix.utf8CodeUnitCount
                guard count >= size else { return false }
                let start = suffix.utf8Start, offset = count - size
                for index in 0..<size where buffer[offset + index] != start[index] { return false }
                return true
            }
            if ends("'s") { count -= 2 }
            let length = count
            if length > 4, ends("ies") {
                count -= 2
                buffer[count - 1] = 0x79  // y
            } else if length > 4, ends("sses") {
                count -= 2
            } else if length > 3, ends("es"), ends("shes") || ends("ches") || ends("xes") || ends("zes") {
                count -= 2
            } else if length > 3, ends("s"), !ends("ss"), !ends("us"), !ends("is") {
                count -= 1
            } else if length > 5, ends("ing") {
                count -= 3
            } else if length > 4, ends("ed") {
                count -= 2
            }
            // undouble: "stabb" -> "stab"; l, s, z, e, o stay doubled.
            if count > 3, buffer[count - 1] == buffer[count - 2], ![0x6C, 0x73, 0x7A, 0x65, 0x6F].contains(buffer[count - 1]) {
                count -= 1
            }
            // The silent e.
            if count > 3, buffer[count - 1] == 0x65, buffer[count - 2] != 0x65 { count -= 1 }
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[0..<count]), as: UTF8.self)
        }
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
        normalized(tokens(text))
    }

    /// The normalised text of tokens already made.
    public static func normalized(_ tokens: [Token]) -> String {
        // ASCII words (most) lower-cased byte by byte into one buffer; others by `lowercased()`.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(tokens.reduce(0) { $0 + $1.text.utf8.count + 1 })
        for token in tokens {
            if !bytes.isEmpty { bytes.append(0x20) }
            if token.text.utf8.allSatisfy({ $0 < 0x80 }) {
                for byte in token.text.utf8 { bytes.append(byte >= 0x41 && byte <= 0x5A ? byte + 32 : byte) }
            } else {
                bytes.append(contentsOf: token.text.lowercased().utf8)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
