import LeaklessCore
import LeaklessModels
import LeaklessImaging

/// The builtin image pool (`data/pool/pool.yaml` and its photos): captioned, freely licensed
/// photographs that descriptions are matched against.
public struct ImagePool: Sendable {
    public struct Photo: Sendable {
        public let file: String
        public let caption: String
        public let source: String
        public let license: String
        public let bytes: [UInt8]
        public let format: ImageFormat
        public let width: Int
        public let height: Int
        public let hash: ContentHash
        /// Caption stems with their TF-IDF weights.
        var vector: [String: Double] = [:]
    }

    public let photos: [Photo]
    /// What exported pairs give as their `source`: the collection the image was retrieved from.
    public var name = "leakless-pool"
    private let idf: [String: Double]
    private let stopStems: Set<String>

    /// Loads the pool folder; every photo is decoded once, so a broken file fails here, by name.
    public static func load(folder: String, stopWords: Set<String>) throws -> ImagePool {
        let path = FileSystem.join(folder, "pool.yaml")
        let reader = ConfigReader(path: path)
        let document = try YAMLDocument.load(path: path)
        let top = try reader.mapping(document, "the pool", keys: ["name", "photos"])
        var photos: [Photo] = []
        for node in try reader.list(top, "photos") {
            let entry = try reader.mapping(node, "a photo", keys: ["file", "caption", "source", "license"])
            let file = try reader.string(entry, "file")
            let bytes = try FileSystem.read(FileSystem.join(folder, file))
            let image: DecodedImage
            do {
                image = try ImageCodec.decode(bytes)
            } catch let error as ImageError {
                throw LocatedError(path: path, line: node.line, message: "\(file): \(error.message)")
            }
            photos.append(Photo(
                file: file, caption: try reader.string(entry, "caption"), source: try reader.string(entry, "source"),
                license: try reader.string(entry, "license"), bytes: bytes, format: ImageFormat.sniff(bytes)!,
                width: image.width, height: image.height, hash: ContentHash(of: bytes)))
        }
        var pool = ImagePool(photos: photos, stopStems: stopWords)
        if let name = document["name"]?.json.stringValue, !name.isEmpty { pool.name = name }
        return pool
    }

    init(photos: [Photo], stopStems: Set<String>) {
        self.stopStems = stopStems
        var documentFrequency: [String: Int] = [:]
        let bags = photos.map { Self.bag($0.caption, stop: stopStems) }
        for bag in bags { for stem in bag.keys { documentFrequency[stem, default: 0] += 1 } }
        let count = Double(max(photos.count, 1))
        idf = documentFrequency.mapValues { 1 + (count / Double($0)).squareRoot() }
        var weighted = photos
        for index in weighted.indices {
            weighted[index].vector = Self.weigh(bags[index], idf: idf)
        }
        self.photos = weighted
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

    /// Photos by cosine similarity of their caption to `description`, best first; ties broken by
    /// a hash of `salt` and the file name, so equally poor matches spread over the pool instead
    /// of all landing on the first photo.
    public func ranked(for description: String, salt: String) -> [(photo: Photo, score: Double)] {
        let query = Self.weigh(Self.bag(description, stop: stopStems), idf: idf)
        let scored = photos.map { photo -> (photo: Photo, score: Double, tie: String) in
            let score = query.reduce(0.0) { $0 + $1.value * (photo.vector[$1.key] ?? 0) }
            return (photo, score.rounded(places: 6), ContentHash(ofString: salt + photo.file).hex)
        }
        return scored.sorted { $0.score != $1.score ? $0.score > $1.score : $0.tie < $1.tie }.map { ($0.photo, $0.score) }
    }
}

/// image, builtin: retrieval. Each query's image description is matched against the pool's
/// captions; the best photo is stored in the blob store and attached with its source, licence and
/// match score. A description whose best match scores below `min_score` is rejected.
public struct BuiltinImageStage: RecordStage {
    let pool: ImagePool
    let blobs: BlobStore
    let minScore: Double
    var used: [String: Int] = [:]
    var stored = Set<ContentHash>()

    public init(context: StageContext, parameters: ImageStage.Parameters) throws {
        let stop = try Lexicon.load(path: parameters.lexicon).stopStems
        pool = try ImagePool.load(folder: parameters.pool, stopWords: stop)
        guard !pool.photos.isEmpty else {
            throw LocatedError(path: parameters.pool, line: nil, message: "the pool has no photos")
        }
        blobs = BlobStore(folder: context.blobs)
        minScore = parameters.minScore
    }

    public var extraStats: [String: JSONValue] {
        ["photos_used": .int(Int64(used.count)), "pool_size": .int(Int64(pool.photos.count))]
    }

    public mutating func process(_ record: Record) throws -> [StageOutput] {
        try record.requireKind(["query", "seed"])
        let description = try record.requireString("image_description")
        guard let best = pool.ranked(for: description, salt: record.id).first else { return [] }
        guard best.score >= minScore else {
            return [.reject(record, reason: "no-matching-image",
                            detail: "best pool photo \(best.photo.file) scores \(best.score), below min_score \(minScore)")]
        }
        let photo = best.photo
        if stored.insert(photo.hash).inserted { try blobs.store(photo.bytes, format: photo.format) }
        used[photo.file, default: 0] += 1
        let collection = pool.name
        return [.record(record.derived { fields in
            fields["kind"] = "pair"
            // The image's origin, as VLSBench's `source` says it: a retrieved picture is not generated.
            fields["source"] = .string(collection)
            fields["image"] = .object([
                "blob": .string(photo.hash.hex), "format": .string(photo.format.rawValue),
                "width": .int(Int64(photo.width)), "height": .int(Int64(photo.height)),
                "method": "retrieval", "origin": .string(photo.file), "caption": .string(photo.caption),
                "source": .string(photo.source), "license": .string(photo.license), "score": .double(best.score),
            ])
        })]
    }
}
