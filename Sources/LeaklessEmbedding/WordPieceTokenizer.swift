import Foundation
import LeaklessCore

/// BERT's uncased tokenizer, as Hugging Face's BertTokenizer runs it: clean the text (drop
/// control characters, map white space to spaces), space out CJK ideographs, lower-case, strip
/// accents (NFD, drop combining marks), split on white space and punctuation, then WordPiece:
/// the longest vocabulary prefix first, continuations written `##piece`, a word that cannot be
/// split (or longer than 100 characters) becoming `[UNK]`.
public struct WordPieceTokenizer: Sendable {
    public let vocabulary: [String: Int32]
    public let unknown: Int32
    public let classify: Int32
    public let separator: Int32
    /// Tokens per sequence, [CLS] and [SEP] included.
    public let maxLength: Int
    static let maxWordCharacters = 100

    public init(vocabularyFile path: String, maxLength: Int) throws {
        let text = try FileSystem.readText(path)
        var vocabulary: [String: Int32] = [:]
        var index: Int32 = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let token = line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
            if !token.isEmpty, vocabulary[token] == nil { vocabulary[token] = index }
            index += 1
        }
        func id(_ token: String) throws -> Int32 {
            guard let id = vocabulary[token] else { throw LocatedError(path: path, line: nil, message: "the vocabulary has no \(token)") }
            return id
        }
        self.vocabulary = vocabulary
        unknown = try id("[UNK]")
        classify = try id("[CLS]")
        separator = try id("[SEP]")
        self.maxLength = maxLength
    }

    /// The ids of `text`: [CLS], its pieces (cut to fit), [SEP].
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = [classify]
        for word in basicTokens(text) {
            ids += wordPieces(word)
            if ids.count >= maxLength - 1 { break }
        }
        if ids.count > maxLength - 1 { ids.removeLast(ids.count - (maxLength - 1)) }
        ids.append(separator)
        return ids
    }

    /// Words and punctuation marks, lower-cased and without accents.
    func basicTokens(_ text: String) -> [String] {
        var spaced = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            let value = scalar.value
            if value == 0 || value == 0xFFFD || isControl(scalar) { continue }
            if isWhitespace(scalar) {
                spaced.append(" ")
            } else if isCJK(value) {
                spaced.append(" ")
                spaced.append(scalar)
                spaced.append(" ")
            } else {
                spaced.append(scalar)
            }
        }
        var tokens: [String] = []
        for word in String(spaced).split(separator: " ") {
            let lowered = word.lowercased().decomposedStringWithCanonicalMapping
            var current = String.UnicodeScalarView()
            for scalar in lowered.unicodeScalars where scalar.properties.generalCategory != .nonspacingMark {
                if isPunctuation(scalar) {
                    if !current.isEmpty { tokens.append(String(current)) }
                    current = String.UnicodeScalarView()
                    tokens.append(String(scalar))
                } else {
                    current.append(scalar)
                }
            }
            if !current.isEmpty { tokens.append(String(current)) }
        }
        return tokens
    }

    /// Greedy longest-match-first pieces of one word.
    func wordPieces(_ word: String) -> [Int32] {
        // Code points, as Python iterates a string (not grapheme clusters).
        let characters = Array(word.unicodeScalars)
        guard characters.count <= Self.maxWordCharacters else { return [unknown] }
        var pieces: [Int32] = []
        var start = 0
        while start < characters.count {
            var end = characters.count
            var found: Int32?
            while start < end {
                var scalars = String.UnicodeScalarView()
                scalars.append(contentsOf: characters[start..<end])
                let piece = (start > 0 ? "##" : "") + String(scalars)
                if let id = vocabulary[piece] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else { return [unknown] }
            pieces.append(id)
            start = end
        }
        return pieces
    }

    private func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" || scalar.properties.generalCategory == .spaceSeparator
    }

    private func isControl(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\t" || scalar == "\n" || scalar == "\r" { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    private func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        if (33...47).contains(value) || (58...64).contains(value) || (91...96).contains(value) || (123...126).contains(value) { return true }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
            .finalPunctuation, .otherPunctuation:
            return true
        default: return false
        }
    }

    private func isCJK(_ value: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(value) || (0x3400...0x4DBF).contains(value) || (0x20000...0x2A6DF).contains(value)
            || (0x2A700...0x2B73F).contains(value) || (0x2B740...0x2B81F).contains(value) || (0x2B820...0x2CEAF).contains(value)
            || (0xF900...0xFAFF).contains(value) || (0x2F800...0x2FA1F).contains(value)
    }
}
