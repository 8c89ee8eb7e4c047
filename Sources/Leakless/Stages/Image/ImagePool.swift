import Foundation
import LeaklessCore
import LeaklessEmbedding
import LeaklessImaging
import LeaklessModels

/// The pictures the builtin image stage retrieves from: the project's captioned photographs
/// (`data/pool/pool.yaml`) and, when installed, the Open Clip Art Library's indexed clip art.
public struct ImagePool: Sendable {
    public struct Picture: Sendable {
        /// Where it is inside its collection (`retina.jpg`, `png/tools/weapons/ak47_01.png`).
        public let file: String
        /// Where it is read from.
        public let path: String
        public let caption: String
        /// The collection: what exported pairs give as their `source`.
        public let collection: String
        /// Who made it and where it was found.
        public let source: String
        public let license: String
    }

    public let pictures: [Picture]
    /// How many of `pictures` are the photographs (they come first).
    public let photoCount: Int

    /// The photographs' collection name when pool.yaml gives none.
    public static let defaultName = "leakless-pool"
    public static let clipartName = "openclipart"

    /// Loads the pool folder (every photo is decoded once, so a broken file fails here, by name)
    /// and, when `clipart` is given, the clip-art index (built once, kept under `cache`, the
    /// per-user cache that workdirs share (`PoolIndexCache`): never beside the pool's own files).
    public static func load(folder: String, clipart: String? = nil, cache: String,
                            progress: ((String) -> Void)? = nil) throws -> ImagePool {
        let path = FileSystem.join(folder, "pool.yaml")
        let reader = ConfigReader(path: path)
        let document = try YAMLDocument.load(path: path)
        let top = try reader.mapping(document, "the pool", keys: ["name", "photos"])
        var name = defaultName
        if let given = document["name"]?.json.stringValue, !given.isEmpty { name = given }
        var pictures: [Picture] = []
        for node in try reader.list(top, "photos") {
            let entry = try reader.mapping(node, "a photo", keys: ["file", "caption", "source", "license"])
            let file = try reader.string(entry, "file")
            let photoPath = FileSystem.join(folder, file)
            do {
                _ = try ImageCodec.decode(try FileSystem.read(photoPath))
            } catch let error as ImageError {
                throw LocatedError(path: path, line: node.line, message: "\(file): \(error.message)")
            }
            pictures.append(Picture(file: file, path: photoPath, caption: try reader.string(entry, "caption"), collection: name,
                                    source: try reader.string(entry, "source"), license: try reader.string(entry, "license")))
        }
        let photoCount = pictures.count
        if let clipart, !clipart.isEmpty {
            let index = try ClipartIndex.load(folder: clipart, cacheFolder: cache, progress: progress)
            for entry in index.entries {
                pictures.append(Picture(file: entry.file, path: FileSystem.join(clipart, entry.file), caption: entry.caption, collection: clipartName,
                                        source: "Open Clip Art Library (Debian openclipart-png), \(entry.file)", license: entry.license))
            }
        }
        return ImagePool(pictures: pictures, photoCount: photoCount)
    }

    /// The picture's file as a PNG or JPEG the export can copy: a photo as it is; clip art
    /// flattened onto white and scaled so its longer side is at most `maxSide`.
    func image(_ picture: Picture, maxSide: Int) throws -> (bytes: [UInt8], format: ImageFormat, width: Int, height: Int) {
        let bytes = try FileSystem.read(picture.path)
        let decoded: DecodedImage
        do {
            decoded = try ImageCodec.decode(bytes)
        } catch let error as ImageError {
            throw RecordError("\(picture.path): \(error.message)")
        }
        if picture.collection != Self.clipartName, let format = ImageFormat.sniff(bytes) {
            return (bytes, format, decoded.width, decoded.height)
        }
        let scaled = ImageCodec.thumbnail(decoded, side: maxSide)
        return (try ImageCodec.encodePNG(scaled), .png, scaled.width, scaled.height)
    }
}

/// Scores every picture's caption against a text, one way or another.
protocol CaptionMatcher: Sendable {
    /// "embedding" or "tfidf".
    var method: String { get }
    /// One score per picture, in the pool's order.
    func scores(_ text: String) -> [Float]
}

/// Cosine similarity of TF-IDF vectors of stems, stop words left out, through an inverted index.
struct TFIDFMatcher: CaptionMatcher {
    let method = "tfidf"
    /// Per stem, the captions holding it and its weight there.
    private let postings: [String: [(caption: Int32, weight: Float)]]
    private let idf: [String: Double]
    private let stopStems: Set<String>
    private let count: Int

    init(captions: [String], stopStems: Set<String>) {
        self.stopStems = stopStems
        var documentFrequency: [String: Int] = [:]
        let bags = captions.map { Self.bag($0, stop: stopStems) }
        for bag in bags { for stem in bag.keys { documentFrequency[stem, default: 0] += 1 } }
        let total = Double(max(captions.count, 1))
        let idf = documentFrequency.mapValues { 1 + (total / Double($0)).squareRoot() }
        self.idf = idf
        var postings: [String: [(caption: Int32, weight: Float)]] = [:]
        for (index, bag) in bags.enumerated() {
            for (stem, weight) in Self.weigh(bag, idf: idf) { postings[stem, default: []].append((Int32(index), Float(weight))) }
        }
        self.postings = postings
        count = captions.count
    }

    private static func bag(_ text: String, stop: Set<String>) -> [String: Double] {
        var counts: [String: Double] = [:]
        for token in Text.tokens(text) where !stop.contains(token.stem) { counts[token.stem, default: 0] += 1 }
        return counts
    }

    private static func weigh(_ bag: [String: Double], idf: [String: Double]) -> [String: Double] {
        var vector = bag.reduce(into: [String: Double]()) { $0[$1.key] = $1.value * (idf[$1.key] ?? 0) }
        let norm = vector.values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        if norm > 0 { for key in vector.keys { vector[key]! /= norm } }
        return vector
    }

    func scores(_ text: String) -> [Float] {
        var scores = [Float](repeating: 0, count: count)
        for (stem, weight) in Self.weigh(Self.bag(text, stop: stopStems), idf: idf) {
            for posting in postings[stem] ?? [] { scores[Int(posting.caption)] += Float(weight) * posting.weight }
        }
        return scores
    }
}

/// Cosine similarity of sentence embeddings (all-MiniLM-L6-v2). The clip art's embeddings are
/// computed once and kept beside its index.
struct EmbeddingMatcher: CaptionMatcher {
    let method = "embedding"
    let embedder: SentenceEmbedder
    /// One unit vector per picture, rows of `dimension`.
    private let matrix: [Float]
    private let count: Int

    init(pool: ImagePool, embedder: SentenceEmbedder, cache: String?, progress: ((String) -> Void)? = nil) throws {
        try self.init(captions: pool.pictures.map(\.caption), embedder: embedder, cache: cache, progress: progress)
    }

    /// Any list of texts; with `cache`, their embeddings are kept there by texts and model.
    init(captions: [String], embedder: SentenceEmbedder, cache: String?, progress: ((String) -> Void)? = nil) throws {
        self.embedder = embedder
        let dimension = embedder.dimension
        // Kept by the captions and the model: the same collection is embedded once.
        let model = try FileSystem.contentHash(of: FileSystem.join(embedder.folder, "config.json")).hex
        let key = ContentHash(ofString: ([model, String(dimension)] + captions).joined(separator: "\n")).hex
        let file = cache.map { FileSystem.join($0, "pool-index", "captions-\(key).f32") }
        var matrix: [Float] = []
        if let file, FileSystem.exists(file), let bytes = try? FileSystem.read(file), bytes.count == captions.count * dimension * 4 {
            matrix = [Float](repeating: 0, count: captions.count * dimension)
            matrix.withUnsafeMutableBytes { target in bytes.withUnsafeBytes { target.copyMemory(from: $0) } }
        } else {
            if captions.count > 100 { progress?("embedding \(captions.count) pool captions (once, kept in \(file.map(FileSystem.parent) ?? "memory"))") }
            matrix = embedder.embed(captions).flatMap { $0 }
            if let file {
                let bytes = matrix.withUnsafeBytes { Array($0) }
                try AtomicFile.write(bytes, to: file)
            }
        }
        self.matrix = matrix
        count = captions.count
    }

    /// Texts already embedded (by any workdir of this user), when kept.
    var texts: TextEmbeddingLog?

    func scores(_ text: String) -> [Float] {
        let query: [Float]
        if let known = texts?.vector(text) {
            query = known
        } else {
            query = embedder.embed(text)
            texts?.keep(text, query)
        }
        var result = [Float](repeating: 0, count: count)
        guard count > 0 else { return result }
        matrix.withUnsafeBufferPointer { rows in
            query.withUnsafeBufferPointer { vector in
                result.withUnsafeMutableBufferPointer { Matrix.multiply(rows, rows: count, columns: vector.count, by: vector, into: $0) }
            }
        }
        return result
    }
}

/// Where the clip-art index and the pool's caption embeddings are kept (under `pool-index/`,
/// keyed by the files and the model as before): a per-user cache that every workdir shares,
/// `$LEAKLESS_CACHE`, else `$XDG_CACHE_HOME/leakless`, else `~/.cache/leakless`; the workdir's
/// own cache when none of these can be written.
enum PoolIndexCache {
    static func folder(workdirCache: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        var candidates: [String] = []
        if let folder = environment["LEAKLESS_CACHE"], !folder.isEmpty {
            candidates.append(folder)
        } else if let folder = environment["XDG_CACHE_HOME"], folder.hasPrefix("/") {
            candidates.append(FileSystem.join(folder, "leakless"))
        } else if let home = environment["HOME"], home.hasPrefix("/") {
            candidates.append(FileSystem.join(home, ".cache/leakless"))
        }
        for folder in candidates {
            let index = FileSystem.join(folder, "pool-index")
            if (try? FileSystem.createDirectory(index)) != nil, access(index, W_OK) == 0 { return folder }
        }
        return workdirCache
    }
}
