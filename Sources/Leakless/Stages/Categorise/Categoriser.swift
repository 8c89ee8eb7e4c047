import LeaklessCore
import LeaklessEmbedding

/// The builtin categoriser: a text (an image caption, or a pair's query and description) goes to
/// the taxonomy entry it is most similar to. An entry is a harmful element with its sub-category's
/// definition, or a sub-category's definition alone when it lists no elements yet. Similarity is
/// the cosine of sentence embeddings when the model is there, else of TF-IDF vectors of stems.
public struct Categoriser: Sendable {
    public struct Entry: Sendable {
        public let category: String
        public let subCategory: String
        public let definition: String
        /// nil for a sub-category without elements.
        public let element: Taxonomy.Element?
        public let text: String
    }

    public struct Match: Sendable {
        public let entry: Entry
        public let similarity: Double
    }

    public let entries: [Entry]
    let matcher: any CaptionMatcher

    public var method: String { matcher.method }

    /// - Parameters:
    ///   - embedder: when given, embeddings; else TF-IDF with `stopStems` left out.
    public init(taxonomy: Taxonomy, embedder: SentenceEmbedder?, stopStems: Set<String>) throws {
        var entries: [Entry] = []
        for category in taxonomy.categories {
            for sub in category.subCategories {
                if sub.elements.isEmpty {
                    entries.append(Entry(category: category.name, subCategory: sub.name, definition: sub.definition, element: nil,
                                         text: "\(sub.name): \(sub.definition)"))
                }
                for element in sub.elements {
                    let text = ([element.name] + element.terms + [element.scene, sub.definition]).joined(separator: "; ")
                    entries.append(Entry(category: category.name, subCategory: sub.name, definition: sub.definition, element: element, text: text))
                }
            }
        }
        self.entries = entries
        if let embedder {
            matcher = try EmbeddingMatcher(captions: entries.map(\.text), embedder: embedder, cache: nil)
        } else {
            matcher = TFIDFMatcher(captions: entries.map(\.text), stopStems: stopStems)
        }
    }

    /// The entry most similar to `text` among those `allowed` (the first in taxonomy order on a tie).
    public func best(_ text: String, where allowed: (Entry) -> Bool = { _ in true }) -> Match? {
        let scores = matcher.scores(text)
        var best: Int?
        for index in entries.indices where allowed(entries[index]) && (best == nil || scores[index] > scores[best!]) { best = index }
        return best.map { Match(entry: entries[$0], similarity: Double(scores[$0])) }
    }
}

/// The `matching` parameter shared by the stages that compare texts (image, extract's
/// perception, categorise): sentence embeddings when asked or, with `auto`, when the model is
/// there; TF-IDF otherwise, with a warning on stderr when `auto` had to fall back.
/// How captions, definitions and descriptions are matched to a text.
public enum TextMatching: String, Sendable, CaseIterable, Decodable {
    /// Sentence embeddings when the model is there, else TF-IDF.
    case auto
    case embedding
    case tfidf

    func check(model: String) throws {
        if self == .embedding && !SentenceEmbedder.available(in: model) {
            throw RecordError("'matching: embedding' needs the embedding model in \(model): run ./scripts/setup, or set 'matching: tfidf'")
        }
    }

    /// The embedder to use, or nil for TF-IDF.
    func embedder(model: String, stage: String, what: String) throws -> SentenceEmbedder? {
        let useEmbedding = self == .embedding || (self == .auto && SentenceEmbedder.available(in: model))
        if self == .auto && !useEmbedding {
            FileHandleOutput.standardError("[\(stage)] warning: no embedding model in \(model) (run ./scripts/setup): \(what) by TF-IDF\n")
        }
        return useEmbedding ? try SentenceEmbedder(folder: model) : nil
    }
}
