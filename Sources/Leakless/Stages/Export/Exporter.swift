import LeaklessCore
import LeaklessModels
import LeaklessImaging

/// The layouts an export can take.
public enum ExportFormat: String, Sendable, CaseIterable, Decodable {
    /// VLSBench's own: `data.json` and `imgs/`.
    case vlsbench
    /// Hugging Face `datasets`' imagefolder: `metadata.jsonl` with `file_name` beside `imgs/`.
    case imagefolder
}

/// export: the benchmark in VLSBench's own layout, so its evaluation code runs unchanged:
/// `data.json`, a JSON array of {instruction_id, instruction, image_path, category,
/// sub_category, source, image_description, safety_reason}, and the images under `imgs/` as PNG,
/// each distinct image once (pairs that show the same image share its file);
/// or, as `imagefolder`, the same fields in `metadata.jsonl` with `file_name`. Beside either:
/// `provenance.jsonl` (what each pair was made from, stage by stage) and a dataset card
/// (`README.md`). The folder is built under a temporary name and moved into place by
/// `commit()`; an exporter dropped without a commit removes it.
public final class VLSBenchExporter {
    public static let fields = [
        "instruction_id", "instruction", "image_path", "category", "sub_category", "source", "image_description",
        "safety_reason",
    ]

    let folder: String
    let blobs: BlobStore
    private let temporary: String
    private var entries: [JSONValue] = []
    private var committed = false
    /// Where each distinct image was written (`imgs/N.png`, numbered in order of first use).
    private var imagePaths: [ContentHash: String] = [:]
    public private(set) var perCategory: [String: Int] = [:]
    let format: ExportFormat
    /// The stats files of the stages before the export, for the card's funnel and the lineage.
    let upstream: [String]
    private let lineage: LineageIndex
    private var provenance: [String] = []
    private var card = DatasetCard()
    /// The human review the export honoured, for the card.
    var review: ReviewSummary?

    public init(folder: String, blobs: BlobStore, format: ExportFormat = .vlsbench, upstream: [String] = []) throws {
        self.folder = folder
        self.blobs = blobs
        self.format = format
        self.upstream = upstream
        lineage = try LineageIndex(statsFiles: upstream)
        temporary = TemporaryName.beside(folder)
        try FileSystem.remove(temporary)
        try FileSystem.createDirectory(FileSystem.join(temporary, "imgs"))
    }

    deinit {
        if !committed { try? FileSystem.remove(temporary) }
    }

    /// Adds one pair; an image that cannot be read is the caller's reject, with this error.
    public func add(_ record: Record) throws {
        try record.requireKind(["pair"])
        let image = try record.requireObject("image")
        guard let blob = image["blob"]?.stringValue.flatMap(ContentHash.init(hex:)),
            let format = image["format"]?.stringValue.flatMap(ImageFormat.init(rawValue:))
        else { throw RecordError("field 'image' needs 'blob' (a content hash) and 'format' (png or jpeg)") }
        // Each distinct image is written once; the pairs that show it share the file.
        let imagePath: String
        if let known = imagePaths[blob] {
            imagePath = known
        } else {
            let bytes = try FileSystem.read(blobs.path(for: blob, format: format))
            let png = format == .png ? bytes : try ImageCodec.encodePNG(try ImageCodec.decode(bytes))
            imagePath = "imgs/\(imagePaths.count).png"
            try AtomicFile.write(png, to: FileSystem.join(temporary, imagePath))
            imagePaths[blob] = imagePath
        }
        let index = entries.count
        let category = try record.requireString("category")
        provenance.append(JSONWriter.canonical(lineage.provenance(of: record, instructionID: index, imagePath: imagePath)))
        card.add(record)
        entries.append(.object([
            "instruction_id": .int(Int64(index)),
            "instruction": .string(try record.requireString("query")),
            "image_path": .string(imagePath),
            "category": .string(category),
            "sub_category": .string(try record.requireString("sub_category")),
            "source": .string(try record.requireString("source")),
            "image_description": .string(try record.requireString("image_description")),
            "safety_reason": .string(try record.requireString("safety_reason")),
        ]))
        perCategory[category, default: 0] += 1
    }

    public var count: Int { entries.count }

    /// Writes data.json (or metadata.jsonl), provenance.jsonl and the card, and moves the
    /// finished folder into place.
    public func commit() throws {
        switch format {
        case .vlsbench:
            try AtomicFile.write(JSONWriter.pretty(.array(entries), keyOrder: Self.fields), to: FileSystem.join(temporary, "data.json"))
        case .imagefolder:
            let lines = entries.map { entry -> String in
                var fields = entry.objectValue ?? [:]
                fields["file_name"] = fields.removeValue(forKey: "image_path")
                return JSONWriter.canonical(.object(fields))
            }
            try AtomicFile.write(lines.joined(separator: "\n") + "\n", to: FileSystem.join(temporary, "metadata.jsonl"))
        }
        try AtomicFile.write(provenance.joined(separator: "\n") + (provenance.isEmpty ? "" : "\n"), to: FileSystem.join(temporary, "provenance.jsonl"))
        try AtomicFile.write(card.markdown(format: format, funnel: lineage.funnel, models: lineage.models, review: review, selection: lineage.selectionReport), to: FileSystem.join(temporary, "README.md"))
        try FileSystem.replaceDirectory(folder, with: temporary)
        committed = true
    }
}

/// The export stage as a record stage: pairs in, the folder out (its records, the exported pairs,
/// are the stage's JSONL output); unreadable images are rejects.
public struct ExportWriterStage: RecordStage {
    let exporter: VLSBenchExporter

    let review: ReviewGate?

    public init(context: StageContext, folder: String, parameters: ExportStage.Parameters) throws {
        exporter = try VLSBenchExporter(
            folder: folder, blobs: BlobStore(folder: context.blobs), format: parameters.format, upstream: context.upstream)
        review = parameters.review.readsDecisions ? try ReviewGate(policy: parameters.review, context: context) : nil
    }

    public mutating func process(_ given: Record) throws -> [StageOutput] {
        var record = given
        if let review {
            switch try review.decide(given) {
            case .keep(let kept): record = kept
            case .leaveOut(let reason, let detail): return [.reject(given, reason: reason, detail: detail)]
            }
        }
        do {
            try exporter.add(record)
        } catch let error as ImageError {
            return [.reject(record, reason: error.reason.rawValue, detail: error.message)]
        } catch let error as LocatedError where error.line == nil {
            return [.reject(record, reason: "missing-image", detail: error.description)]
        }
        return [.record(record)]
    }

    public mutating func finish() throws -> [StageOutput] {
        if let review {
            review.finish()
            exporter.review = review.summary
        }
        try exporter.commit()
        return []
    }

    public var extraStats: [String: JSONValue] {
        var stats: [String: JSONValue] = ["pairs_per_category": .object(exporter.perCategory.mapValues { .int(Int64($0)) })]
        if let review { stats["review"] = review.summary.json }
        return stats
    }
}
