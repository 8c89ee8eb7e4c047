import LeaklessCore
import LeaklessEmbedding
import LeaklessImaging
import LeaklessModels

/// image, builtin: retrieval, then typography. Each query's image description and element terms
/// are matched against the captions of the photographs and the clip art (sentence embeddings,
/// or TF-IDF without the model); a picture at or above the threshold is used, an element's
/// queries spread over its best few; below it, the element's key phrase is drawn as text (or
/// under the best weak match, or the query is rejected), so every pair's image shows its risk.
public struct BuiltinImageStage: RecordStage {
    let pool: ImagePool
    let matcher: any CaptionMatcher
    let threshold: Float
    let blobs: BlobStore
    let spread: Int
    let fallback: ImageFallback
    let maxSide: Int
    let text: TypographicText?
    /// Per element, how many of its queries each picture was given to.
    var usedByElement: [String: [Int: Int]] = [:]
    /// Pictures already stored, by their index in the pool.
    var stored: [Int: (blob: ContentHash, format: ImageFormat, width: Int, height: Int)] = [:]
    var pairsBySource: [String: Int] = [:]
    /// Scores by the text matched (a query's rewrites share their description; the last 256
    /// texts) and images drawn by what was drawn: each is computed once.
    var scoresByText: [String: [Float]] = [:]
    var drawnByText: [String: JSONValue] = [:]

    public init(context: StageContext, parameters: ImageStage.Parameters) throws {
        let log: (String) -> Void = { FileHandleOutput.standardError("[image] \($0)\n") }
        let indexCache = PoolIndexCache.folder(workdirCache: context.cache)
        pool = try ImagePool.load(folder: parameters.pool, clipart: parameters.clipart, cache: indexCache, progress: log)
        guard !pool.pictures.isEmpty else {
            throw LocatedError(path: parameters.pool, line: nil, message: "the pool has no pictures")
        }
        let useEmbeddings = parameters.matching == .embedding || (parameters.matching == .auto && SentenceEmbedder.available(in: parameters.model))
        if useEmbeddings {
            let embedder = try SentenceEmbedder(folder: parameters.model)
            var embeddings = try EmbeddingMatcher(pool: pool, embedder: embedder, cache: indexCache, progress: log)
            embeddings.texts = try? TextEmbeddingLog(folder: indexCache, embedder: embedder)
            matcher = embeddings
            threshold = Float(parameters.minSimilarity)
        } else {
            if parameters.matching == .auto {
                log("warning: no embedding model in \(parameters.model) (run ./scripts/setup): matching captions by TF-IDF")
            }
            let stop = try Lexicon.load(path: parameters.lexicon).stopStems
            matcher = TFIDFMatcher(captions: pool.pictures.map(\.caption), stopStems: stop)
            threshold = Float(parameters.minTfidf)
        }
        blobs = BlobStore(folder: context.blobs)
        spread = parameters.spread
        fallback = parameters.fallback
        maxSide = parameters.maxSide
        text = fallback == .reject ? nil : try TypographicText(context.backend("typography"))
    }

    public var extraStats: [String: JSONValue] {
        [
            "matching": .string(matcher.method), "threshold": .double(Double(threshold)),
            "pool_photos": .int(Int64(pool.photoCount)), "pool_clipart": .int(Int64(pool.pictures.count - pool.photoCount)),
            "pictures_used": .int(Int64(stored.count)),
            "pairs_by_source": .object(pairsBySource.mapValues { .int(Int64($0)) }),
        ]
    }

    /// What is matched against the captions: the description with the element's naming terms,
    /// and the terms alone (where the risk is named), each scored on its own.
    private func matchTexts(_ record: Record) throws -> [String] {
        let description = try record.requireString("image_description")
        guard let element = try? record.elementTerms() else { return [description] }
        let terms = [element.name] + element.terms.filter { $0.lowercased() != element.name.lowercased() }
        return [description + " " + terms.joined(separator: ", "), terms.joined(separator: ", ")]
    }

    /// The best `count` pool indices by score, best first; equal scores ordered by a hash of
    /// the record and the file, so equally good pictures spread instead of the first always winning.
    private func ranked(_ scores: [Float], salt: String, count: Int) -> [Int] {
        let rounded = ScoreKernels.roundedToMillionths(scores)
        guard let threshold = ScoreKernels.threshold(ofTop: count, in: rounded) else { return [] }
        // Every index at or above the count-th best, so each one that ties with the last kept
        // takes part in the tie-break.
        let candidates = ScoreKernels.indices(atLeast: threshold, in: rounded)
        let tie = Dictionary(uniqueKeysWithValues: candidates.map { ($0, ContentHash(ofString: salt + pool.pictures[$0].file).hex) })
        let top = candidates.sorted { rounded[$0] != rounded[$1] ? rounded[$0] > rounded[$1] : tie[$0]! < tie[$1]! }
        return Array(top.prefix(count))
    }

    private mutating func store(_ index: Int) throws -> (blob: ContentHash, format: ImageFormat, width: Int, height: Int) {
        if let known = stored[index] { return known }
        let image = try pool.image(pool.pictures[index], maxSide: maxSide)
        let entry = (try blobs.store(image.bytes, format: image.format), image.format, image.width, image.height)
        stored[index] = entry
        return entry
    }

    private func describe(_ index: Int, score: Float) -> [String: JSONValue] {
        let picture = pool.pictures[index]
        return [
            "origin": .string(picture.file), "collection": .string(picture.collection), "caption": .string(picture.caption),
            "score": .double((Double(score) * 1_000_000).rounded() / 1_000_000), "matching": .string(matcher.method),
        ]
    }

    /// Each picture's score: the geometric mean of its similarity to the whole description and to
    /// the element's terms alone (negatives as 0), so a picture must show the element, not only
    /// share the scene's words.
    private mutating func scores(_ record: Record) throws -> [Float] {
        var lists: [[Float]] = []
        for text in try matchTexts(record) {
            if let known = scoresByText[text] {
                lists.append(known)
            } else {
                let scores = matcher.scores(text)
                // A query's rewrites come together: a small cache does, and memory stays flat.
                if scoresByText.count >= 256 { scoresByText.removeAll(keepingCapacity: true) }
                scoresByText[text] = scores
                lists.append(scores)
            }
        }
        return ScoreKernels.geometricMeanOfPositives(lists)
    }

    /// The best picture for the record whatever its score, decoded, with what describes it.
    mutating func bestPicture(for record: Record) throws -> (image: DecodedImage, provenance: JSONValue) {
        let scores = try scores(record)
        let best = ranked(scores, salt: record.id, count: 1)[0]
        let picture = pool.pictures[best]
        let image = try ImageCodec.decode(try pool.image(picture, maxSide: maxSide).bytes)
        return (image, .object(describe(best, score: scores[best]).merging(["source": .string(picture.source), "license": .string(picture.license)]) { $1 }))
    }

    public mutating func process(_ record: Record) throws -> [StageOutput] {
        try record.requireKind(["query", "seed"])
        if let passed = ImageStage.passThrough(record) { return passed }
        let scores = try scores(record)
        let order = ranked(scores, salt: record.id, count: spread)
        let best = order[0]
        let candidates = order.prefix { scores[$0] >= threshold }.prefix(spread)
        if !candidates.isEmpty {
            // The element's least-used picture among its best few; the better one on a tie.
            let element = (try? record.elementTerms().name) ?? record.id
            let uses = usedByElement[element] ?? [:]
            let chosen = candidates.min { (uses[$0] ?? 0, -scores[$0]) < (uses[$1] ?? 0, -scores[$1]) }!
            usedByElement[element, default: [:]][chosen, default: 0] += 1
            let image = try store(chosen)
            let picture = pool.pictures[chosen]
            pairsBySource[picture.collection, default: 0] += 1
            var fields = describe(chosen, score: scores[chosen])
            fields.merge([
                "blob": .string(image.blob.hex), "format": .string(image.format.rawValue),
                "width": .int(Int64(image.width)), "height": .int(Int64(image.height)), "method": "retrieval",
                "source": .string(picture.source), "license": .string(picture.license), "rank": .int(Int64(order.firstIndex(of: chosen)! + 1)),
            ]) { $1 }
            return [.record(record.derived { record in
                record["kind"] = "pair"
                // The image's origin, as VLSBench's `source` says it: a retrieved picture is not generated.
                record["source"] = .string(picture.collection)
                record["image"] = .object(fields)
            })]
        }
        let weak = describe(best, score: scores[best])
        guard let text else {
            return [.reject(record, reason: "no-matching-image",
                            detail: "best picture \(pool.pictures[best].file) scores \(weak["score"]!.doubleValue!), below the threshold \(threshold)")]
        }
        let phrase = try record.keyPhrase()
        let memo = "\(phrase)\n\(fallback == .typographyOverMatch ? pool.pictures[best].file : "")"
        var fields: JSONValue
        if let known = drawnByText[memo] {
            fields = known
        } else {
            var picture: DecodedImage?
            var extra: [String: JSONValue] = [:]
            if fallback == .typographyOverMatch {
                picture = try ImageCodec.decode(try pool.image(pool.pictures[best], maxSide: maxSide).bytes)
                extra = ["under": .object(weak.merging(["source": .string(pool.pictures[best].source), "license": .string(pool.pictures[best].license)]) { $1 })]
            }
            let (image, provenance) = try text.draw(phrase: phrase, layout: picture == nil ? .typo : .sdTypo, picture: picture)
            fields = try typographicImage(image, provenance: provenance, blobs: blobs, extra: extra)
            drawnByText[memo] = fields
        }
        // Why no picture was used: this query's best match, below the threshold.
        if fallback == .typography, case .object(var object) = fields {
            object["best_match"] = .object(weak)
            fields = .object(object)
        }
        pairsBySource["typography", default: 0] += 1
        return [.record(record.derived { record in
            record["kind"] = "pair"
            record["source"] = "typography"
            record["image"] = fields
        })]
    }
}
