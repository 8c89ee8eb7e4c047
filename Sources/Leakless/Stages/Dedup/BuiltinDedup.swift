import Foundation
import LeaklessCore
import LeaklessImaging
import LeaklessModels

/// dedup: near-duplicate images by perceptual hash, and duplicate or near-duplicate queries.
///
/// Pairs are taken in keep order: the source's place in `source_priority` (unlisted sources
/// after listed ones), then the larger image, then the id. A pair is dropped when a pair already
/// kept has the same query after normalisation (`duplicate-query`) or one whose SimHash is within
/// `query_radius` bits (`near-duplicate-query`), or when its image's group already carries
/// `max_queries_per_image` kept pairs: the same stored image (`image-reused`), the same pixels in
/// another file (`duplicate-image`), or an image near it by the pHash/dHash rule
/// (`near-duplicate-image`). Images are grouped by leader clustering (no chaining; see
/// LeaderClustering). A typographic image (text drawn on white) is near only to the same pixels:
/// perceptual hashes see every short line of black text on white as alike, whatever it says.
/// Each reject names the kept pair it duplicates and the distance.
/// Output records carry their image's hashes (`image.hashes`); hashes are also cached per
/// stored image, so a rerun decodes nothing.
public struct BuiltinDedupStage: TwoPassStage {
    let maxPerImage: Int
    let dedupQueries: Bool
    let queryRadius: Int
    let mode: HashMode
    let rule: NearDuplicateRule
    let sourcePriority: [String]
    let blobs: BlobStore
    let cacheFolder: String
    let threads: Int

    /// What pass one keeps of each record.
    struct Entry {
        let id: String
        let priority: Int
        let image: Int32
        let queryExact: UInt64
        let querySimHash: UInt64
    }

    struct Image {
        let blob: String
        let format: ImageFormat
        /// Text drawn by the typography backend.
        let isText: Bool
        var fingerprint: Result<ImageFingerprint, ImageError>?
    }

    var entries: [Entry] = []
    var images: [Image] = []
    var imageIndex: [String: Int32] = [:]
    /// Rejected records by their place in the input (both passes read the same order).
    var verdicts: [Int: (reason: String, detail: String, evidence: JSONValue?)] = [:]
    var position = 0
    var hashesDecoded = 0
    var hashesCached = 0
    var groups = 0

    public init(context: StageContext, parameters: DedupStage.Parameters) {
        maxPerImage = parameters.maxQueriesPerImage
        dedupQueries = parameters.dedupQueries
        queryRadius = parameters.queryRadius
        mode = parameters.hashMode
        rule = NearDuplicateRule(
            phash: parameters.phashRadius, dhash: parameters.dhashRadius,
            phashConfirm: parameters.phashConfirm, dhashConfirm: parameters.dhashConfirm)
        sourcePriority = parameters.sourcePriority
        blobs = BlobStore(folder: context.blobs)
        cacheFolder = FileSystem.join(context.cache, "imagehash-\(mode.rawValue)")
        threads = ProcessInfo.processInfo.activeProcessorCount
    }

    public mutating func observe(_ record: Record) throws {
        try record.requireKind(["pair"])
        let image = try record.requireObject("image")
        guard let blob = image["blob"]?.stringValue, ContentHash(hex: blob) != nil,
            let format = image["format"]?.stringValue.flatMap(ImageFormat.init(rawValue:))
        else { throw RecordError("field 'image' needs 'blob' (a content hash) and 'format' (png or jpeg)") }
        let source = try record.requireString("source")
        let normalized = Text.normalized(try record.requireString("query"))
        let index: Int32
        if let known = imageIndex[blob] {
            index = known
        } else {
            index = Int32(images.count)
            imageIndex[blob] = index
            var entry = Image(blob: blob, format: format, isText: image["method"]?.stringValue == "typography")
            if let stored = Self.fingerprint(image["hashes"], mode: mode, format: format) {
                entry.fingerprint = .success(stored)
            }
            images.append(entry)
        }
        entries.append(Entry(
            id: record.id, priority: sourcePriority.firstIndex(of: source) ?? sourcePriority.count, image: index,
            queryExact: ContentHash.xxh64(normalized), querySimHash: TextSimHash.hash(normalized)))
    }

    public mutating func decide() throws {
        try fingerprintImages()
        // Keep order: source priority, larger image, id.
        func pixels(_ entry: Entry) -> Int {
            guard case .success(let found) = images[Int(entry.image)].fingerprint else { return 0 }
            return found.width * found.height
        }
        let order = entries.indices.sorted { a, b in
            let x = entries[a], y = entries[b]
            if x.priority != y.priority { return x.priority < y.priority }
            let px = pixels(x), py = pixels(y)
            if px != py { return px > py }
            return x.id < y.id
        }
        let imageGroups = groupImages(order: order)
        let queryGraph = NeighbourGraph(count: entries.count, pairs: dedupQueries ? queryPairs() : [])
        var rank = [Int](repeating: 0, count: entries.count)
        for (position, index) in order.enumerated() { rank[index] = position }
        var kept = [Bool](repeating: false, count: entries.count)
        var carried: [Int32: (count: Int, first: Int)] = [:]
        for index in order {
            let entry = entries[index]
            let image = images[Int(entry.image)]
            if case .failure(let error) = image.fingerprint {
                verdicts[index] = (error.reason.rawValue, "image \(image.blob): \(error.message)", nil)
                continue
            }
            if let (other, distance) = queryGraph.nearest(of: index, where: { kept[$0] && rank[$0] < rank[index] }) {
                let exact = entries[other].queryExact == entry.queryExact
                let evidence: JSONValue = ["kept_pair": .string(entries[other].id), "simhash_distance": .int(Int64(distance))]
                verdicts[index] = exact
                    ? ("duplicate-query", "same query as \(entries[other].id)", evidence)
                    : ("near-duplicate-query", "query within \(distance) SimHash bits of \(entries[other].id)", evidence)
                continue
            }
            let (leader, distance) = imageGroups[Int(entry.image)]
            if let seen = carried[leader], seen.count >= maxPerImage {
                let first = entries[seen.first]
                verdicts[index] = imageVerdict(entry: entry, first: first, leader: leader, distance: distance, count: seen.count)
                continue
            }
            kept[index] = true
            carried[leader] = ((carried[leader]?.count ?? 0) + 1, carried[leader]?.first ?? index)
        }
        groups = carried.count
    }

    public mutating func process(_ record: Record) throws -> [StageOutput] {
        let index = position
        position += 1
        guard index < entries.count, entries[index].id == record.id else {
            throw RecordError("the input changed between the two passes of the stage")
        }
        if let verdict = verdicts[index] { return [.reject(record, reason: verdict.reason, detail: verdict.detail, evidence: verdict.evidence)] }
        guard case .success(let found) = images[Int(entries[index].image)].fingerprint else {
            throw RecordError("record \(record.id) has no image hashes")
        }
        var image = try record.requireObject("image")
        image["hashes"] = Self.json(found, mode: mode)
        // A record of its own, made from the one kept: rejects name that one, and the lineage
        // of an exported pair leads through it.
        return [.record(record.derived { $0["image"] = .object(image) })]
    }

    public var extraStats: [String: JSONValue] {
        [
            "images": .int(Int64(images.count)), "images_decoded": .int(Int64(hashesDecoded)),
            "images_hash_cached": .int(Int64(hashesCached)), "image_groups_kept": .int(Int64(groups)),
            "hash_mode": .string(mode.rawValue),
        ]
    }

    // MARK: - Images

    /// Hashes every image not yet known: from the cache, else decoded on all cores.
    mutating func fingerprintImages() throws {
        var missing: [Int] = []
        for index in images.indices where images[index].fingerprint == nil {
            if let cached = Self.readCache(
                FileSystem.join(cacheFolder, images[index].blob + ".json"), mode: mode, format: images[index].format) {
                images[index].fingerprint = .success(cached)
                hashesCached += 1
            } else {
                missing.append(index)
            }
        }
        guard !missing.isEmpty else { return }
        let paths = missing.map { index -> String in
            let image = images[index]
            return blobs.path(for: ContentHash(hex: image.blob)!, format: image.format)
        }
        let progress = Progress(label: "dedup")
        let results = ImageFileHasher(mode: mode, threads: threads).fingerprint(paths: paths) { done in
            progress.tick("hashing images: \(done) of \(paths.count)")
        }
        try FileSystem.createDirectory(cacheFolder)
        for (index, result) in zip(missing, results) {
            images[index].fingerprint = result
            hashesDecoded += 1
            if case .success(let found) = result {
                let json = Self.json(found, mode: mode)
                try AtomicFile.write(Array(JSONWriter.canonical(json).utf8), to: FileSystem.join(cacheFolder, images[index].blob + ".json"))
            }
        }
    }

    /// For each image: the leader of its group and the pHash distance to it (itself and 0 when it
    /// leads). Images are ordered by the best pair that carries them.
    func groupImages(order: [Int]) -> [(Int32, Int)] {
        var imageOrder: [Int32] = []
        var placed = Set<Int32>()
        for index in order where placed.insert(entries[index].image).inserted { imageOrder.append(entries[index].image) }
        let readable = images.indices.filter { if case .success = images[$0].fingerprint { return true } else { return false } }
        let hashes = readable.map { index -> ImageHashes in
            guard case .success(let found) = images[index].fingerprint else { return ImageHashes(phash: 0, dhash: 0, ahash: 0) }
            return found.hashes
        }
        let pairs = rule.pairs(hashes, threads: threads).map { (Int32(readable[Int($0.0)]), Int32(readable[Int($0.1)]), $0.2) }.filter { pair in
            let a = images[Int(pair.0)], b = images[Int(pair.1)]
            guard a.isText || b.isText else { return true }
            guard case .success(let x) = a.fingerprint, case .success(let y) = b.fingerprint else { return false }
            return x.pixelDigest == y.pixelDigest
        }
        let assignments = LeaderClustering.assign(count: images.count, order: imageOrder, pairs: pairs)
        return assignments.enumerated().map { index, assignment in
            assignment.map { ($0.leader, $0.distance) } ?? (Int32(index), 0)
        }
    }

    func imageVerdict(entry: Entry, first: Entry, leader: Int32, distance: Int, count: Int) -> (reason: String, detail: String, evidence: JSONValue?) {
        let mine = images[Int(entry.image)], theirs = images[Int(leader)]
        let limit = "already carries \(count) queries (max_queries_per_image \(maxPerImage)); first with \(first.id)"
        var evidence: [String: JSONValue] = ["kept_pair": .string(first.id), "kept_image": .string(theirs.blob), "queries_on_image": .int(Int64(count))]
        if entry.image == leader {
            return ("image-reused", "image \(mine.blob) \(limit)", .object(evidence))
        }
        if case .success(let a) = mine.fingerprint, case .success(let b) = theirs.fingerprint, a.pixelDigest == b.pixelDigest {
            return ("duplicate-image", "image \(mine.blob) has the same pixels as \(theirs.blob), which \(limit)", .object(evidence))
        }
        evidence["phash_distance"] = .int(Int64(distance))
        return ("near-duplicate-image", "image \(mine.blob) is within pHash distance \(distance) of \(theirs.blob), which \(limit)", .object(evidence))
    }

    // MARK: - Queries

    func queryPairs() -> [(Int32, Int32, Int)] {
        HammingSearch.pairs(entries.map(\.querySimHash), radius: queryRadius, threads: threads).compactMap { pair in
            let a = entries[Int(pair.first)], b = entries[Int(pair.second)]
            // An exact duplicate is always a pair, whatever the radius; equal SimHashes of
            // different texts are near duplicates only within the radius.
            if a.queryExact == b.queryExact { return (pair.first, pair.second, 0) }
            return (pair.first, pair.second, Int(pair.distance))
        }
    }

    // MARK: - Stored hashes

    static func json(_ found: ImageFingerprint, mode: HashMode) -> JSONValue {
        .object([
            "mode": .string(mode.rawValue), "phash": .string(ImageHashes.hex(found.hashes.phash)),
            "dhash": .string(ImageHashes.hex(found.hashes.dhash)), "ahash": .string(ImageHashes.hex(found.hashes.ahash)),
            "pixels": .string(found.pixelDigest), "width": .int(Int64(found.width)), "height": .int(Int64(found.height)),
        ])
    }

    static func fingerprint(_ value: JSONValue?, mode: HashMode, format: ImageFormat) -> ImageFingerprint? {
        guard let object = value?.objectValue, object["mode"]?.stringValue == mode.rawValue,
            let p = object["phash"]?.stringValue.flatMap(ImageHashes.parse(hex:)),
            let d = object["dhash"]?.stringValue.flatMap(ImageHashes.parse(hex:)),
            let a = object["ahash"]?.stringValue.flatMap(ImageHashes.parse(hex:)),
            let pixels = object["pixels"]?.stringValue, let width = object["width"]?.intValue, let height = object["height"]?.intValue
        else { return nil }
        return ImageFingerprint(
            hashes: ImageHashes(phash: p, dhash: d, ahash: a), pixelDigest: pixels, format: format, width: Int(width), height: Int(height))
    }

    /// A damaged or foreign cache file is only a miss.
    static func readCache(_ path: String, mode: HashMode, format: ImageFormat) -> ImageFingerprint? {
        guard FileSystem.exists(path), let bytes = try? FileSystem.read(path), let value = try? JSONParser.parse(bytes: bytes) else { return nil }
        return fingerprint(value, mode: mode, format: format)
    }
}
