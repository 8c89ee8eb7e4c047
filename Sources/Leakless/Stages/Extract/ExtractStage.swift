import LeaklessCore
import LeaklessEmbedding
import LeaklessImaging
import LeaklessModels

/// extract: the paper's two paths to harmful seeds. Generation: the harmful elements of the
/// taxonomy become image descriptions and harmful seed queries. Perception: each image of an
/// existing collection is looked at (by a vision model, or by its own caption with the builtin),
/// described, judged risky or not, and given harmful queries; the image travels with the seed.
public enum ExtractStage: PipelineStage {
    public static let definition = StageDefinition(
        name: "extract", version: 2,
        summary: "harmful elements of the taxonomy, or images of existing collections -> image descriptions and harmful seed queries",
        input: .parameter("taxonomy"), output: .records("seed"),
        roles: [BackendRole("backend", serves: ["builtin", "chat"], required: true,
                            "the generator: writes image descriptions and harmful queries (perception: a vision model looks at each image)")],
        parameters: StageParameter.declared(in: Parameters()))

    public struct Parameters: Decodable, Sendable {
        @Parameter("taxonomy", .path, default: "data/taxonomy.yaml", "the taxonomy of categories and harmful elements")
        public var taxonomy: String
        @Parameter("path", .choice(of: ExtractPath.self), default: "generation",
                   "generation: from the taxonomy's elements; perception: from the images of `collections`; both: the two, merged")
        public var path: ExtractPath
        @Parameter("collections", .collectionList, default: [], "image collections for the perception path (folders: COCO captions, a Hugging Face imagefolder, VLSBench's layout, or images with .txt captions)")
        public var collections: [String]
        @Parameter("licenses", .stringList, default: [], "'name: licence' for collections whose files do not say")
        public var licenses: [String]
        @Parameter("queries_per_element", .integer(1...20), default: 3, "harmful queries written per element or image")
        public var queriesPerElement: Int
        @Parameter("seed", .integer(Int64.min...Int64.max), default: 1, "seed of the template choice")
        public var seed: Int64
        @Parameter("categories", .stringList, default: [], "only these categories, or sub-categories written 'Category / Sub-category' (empty: all)")
        public var categories: [String]
        @Parameter("lexicon", .path, default: .string(Lexicon.defaultPath), "perception: its stop words are ignored by TF-IDF matching")
        public var lexicon: String
        @Parameter("model", .optionalPath, default: .string(SentenceEmbedder.defaultFolder), "perception: the sentence-embedding model folder")
        public var model: String
        @Parameter("matching", .choice(of: TextMatching.self), default: "auto",
                   "perception: how a caption is matched to the taxonomy (auto: embeddings when the model is there)")
        public var matching: TextMatching
        @Parameter("min_similarity", .number(0...1), default: 0.3, "perception, embeddings: the least similarity to a harmful element for an image to count as risky")
        public var minSimilarity: Double
        @Parameter("min_tfidf", .number(0...1), default: 0.2, "perception, TF-IDF: the same, for TF-IDF similarity")
        public var minTfidf: Double

        var generates: Bool { path != .perception }
        var perceives: Bool { path != .generation }

        /// The licences given by the pipeline, by collection name.
        func licenceMap() throws -> [String: String] {
            var map: [String: String] = [:]
            for entry in licenses {
                guard let colon = entry.firstIndex(of: ":") else { throw RecordError("'licenses' entries are 'name: licence', found '\(entry)'") }
                map[entry[..<colon].trimmingCharacters(in: .whitespaces)] = entry[entry.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            return map
        }

        /// The collections, read; two of one name are an error.
        func loadCollections() throws -> [ImageCollection] {
            let licences = try licenceMap()
            var seen: [String: String] = [:]
            return try collections.map { folder in
                let collection = try ImageCollection.load(folder: folder, licenses: licences)
                if let other = seen[collection.name] {
                    throw RecordError("two collections are named '\(collection.name)' (\(other) and \(folder)): give one a collection.yaml with another name")
                }
                seen[collection.name] = folder
                return collection
            }
        }
    }

    public static func validate(_ parameters: Parameters) throws {
        if parameters.perceives && parameters.collections.isEmpty {
            throw RecordError("'path: \(parameters.path)' needs 'collections': the image folders to look at")
        }
        if !parameters.perceives && !parameters.collections.isEmpty {
            throw RecordError("'collections' are read only with 'path: perception' or 'path: both'")
        }
        _ = try parameters.licenceMap()
        try parameters.matching.check(model: parameters.model)
    }

    public static func implementation(_ parameters: Parameters, context: StageContext) throws -> StageImplementation {
        if context.network("backend") != nil {
            return .concurrent(try ModelStage(context) { try ModelExtract($0, parameters: parameters) })
        }
        return .sequential(try BuiltinExtractStage(context: context, parameters: parameters))
    }

    /// The taxonomy's elements (generation), then each collection's images (perception).
    public static func source(_ parameters: Parameters, input: String) throws -> RecordSource {
        let taxonomy = try Taxonomy.load(path: input)
        let unknown = taxonomy.unknownSelections(parameters.categories)
        if !unknown.isEmpty {
            throw LocatedError(path: input, line: nil, message: "extract's categories name \(unknown.map { "'\($0)'" }.joined(separator: ", ")), which the taxonomy does not have (a category's name, or 'Category / Sub-category')")
        }
        var records = parameters.generates ? taxonomy.elementRecords(categories: parameters.categories) : []
        if parameters.generates {
            for category in taxonomy.categories {
                for sub in category.subCategories where sub.elements.isEmpty
                    && Taxonomy.selects(parameters.categories, category: category.name, subCategory: sub.name) {
                    FileHandleOutput.standardError("[extract] warning: \(input): '\(category.name) / \(sub.name)' lists no harmful elements, so it gives no seeds (leakless taxonomy expand lists some)\n")
                }
            }
        }
        if parameters.perceives {
            for collection in try parameters.loadCollections() {
                for (index, item) in collection.items.enumerated() {
                    var labels: [String: JSONValue] = [:]
                    for (key, value) in item.labels { labels[key] = .string(value) }
                    records.append((index + 1, Record([
                        "kind": "collection_image",
                        "taxonomy": .string(taxonomy.version),
                        "collection": .string(collection.name),
                        "layout": .string(collection.layout),
                        "file": .string(item.file),
                        "caption": item.caption.map(JSONValue.string) ?? .null,
                        "labels": .object(labels),
                        "license": .string(item.license),
                        "collection_source": .string(collection.source),
                        "parents": [],
                    ])))
                }
            }
        }
        return ArrayRecordSource(path: input, records: records)
    }

    public static func provenance(of pair: Record) -> JSONValue? {
        if let perception = pair["perception"] { return perception }
        return pair["extract"] ?? .object(["method": "builtin", "template": pair["template"] ?? .null])
    }

}

/// What the perception path shares between the builtin and the model: the collections by name,
/// reading an image into the blob store, and the taxonomy entry nearest to a text.
struct Perception: Sendable {
    let collections: [String: ImageCollection]
    let categoriser: Categoriser
    let threshold: Double
    let blobs: BlobStore

    init(parameters: ExtractStage.Parameters, context: StageContext, requireCaptions: Bool) throws {
        let loaded = try parameters.loadCollections()
        if requireCaptions {
            for collection in loaded where !collection.items.isEmpty && collection.items.allSatisfy({ $0.caption == nil }) {
                throw RecordError("collection '\(collection.name)' (\(collection.folder), \(collection.layout) layout) has no captions: the builtin perception describes an image by its caption (a .txt beside each image, a caption field in metadata.jsonl, COCO's captions file, or image_description); give captions or use a vision model backend")
            }
        }
        collections = Dictionary(uniqueKeysWithValues: loaded.map { ($0.name, $0) })
        let taxonomy = try Taxonomy.load(path: parameters.taxonomy)
        let embedder = try parameters.matching.embedder(model: parameters.model, stage: "extract", what: "perception matches captions to the taxonomy")
        categoriser = try Categoriser(taxonomy: taxonomy, embedder: embedder, stopStems: try Lexicon.load(path: parameters.lexicon).stopStems)
        threshold = embedder != nil ? parameters.minSimilarity : parameters.minTfidf
        blobs = BlobStore(folder: context.blobs)
    }

    /// The record's image: its file read from its collection, or why it cannot be used.
    func image(_ record: Record) throws -> Result<(bytes: [UInt8], fields: [String: JSONValue]), StageRejection> {
        let name = try record.requireString("collection")
        let file = try record.requireString("file")
        guard let collection = collections[name] else { throw RecordError("unknown collection '\(name)'") }
        let path: String
        switch FileSystem.resolve(file, inside: collection.folder) {
        case .success(let found): path = found
        case .failure(let error): return .failure(StageRejection(reason: "missing-image", detail: error.description))
        }
        let bytes = try FileSystem.read(path)
        guard let format = ImageFormat.sniff(bytes), format == .png || format == .jpeg else {
            return .failure(StageRejection(reason: "not-an-image", detail: "\(file) in \(name) is not a PNG or JPEG file"))
        }
        let decoded: DecodedImage
        do {
            decoded = try ImageCodec.decode(bytes)
        } catch let error as ImageError {
            return .failure(StageRejection(reason: "corrupt-image", detail: "\(file) in \(name): \(error.message)"))
        }
        let blob = try blobs.store(bytes, format: format)
        return .success((bytes, [
            "blob": .string(blob.hex), "format": .string(format.rawValue), "width": .int(Int64(decoded.width)),
            "height": .int(Int64(decoded.height)), "method": "collection", "collection": .string(name), "file": .string(file),
            "license": record["license"] ?? "unknown", "source": record["collection_source"] ?? .string(name),
        ]))
    }

    /// The nearest harmful element to `text`, when it is near enough to count as shown.
    func nearestElement(_ text: String) -> Categoriser.Match? {
        categoriser.best(text) { $0.element != nil }
    }

    /// A perception seed: the image travels with it, its `source` is the collection's name.
    static func seed(_ record: Record, image: [String: JSONValue], description: String, safety: String, query: String,
                     match: Categoriser.Match?, provenance: JSONValue, extra: [String: JSONValue] = [:]) -> Record {
        record.derived { fields in
            for key in ["collection", "layout", "file", "caption", "labels", "license", "collection_source"] { fields.removeValue(forKey: key) }
            fields["kind"] = "seed"
            fields["path"] = "perception"
            fields["source"] = image["collection"]!
            fields["image"] = .object(image)
            fields["image_description"] = .string(description)
            fields["safety_reason"] = .string(safety)
            fields["query"] = .string(query)
            fields["perception"] = provenance
            if let match, let element = match.entry.element {
                fields["category"] = .string(match.entry.category)
                fields["sub_category"] = .string(match.entry.subCategory)
                fields["element"] = element.json
            }
            for (key, value) in extra { fields[key] = value }
        }
    }
}

/// The paper's two paths to pairs: generation from harmful elements, perception of existing
/// images, or both.
public enum ExtractPath: String, Sendable, CaseIterable, Decodable {
    case generation
    case perception
    case both
}
