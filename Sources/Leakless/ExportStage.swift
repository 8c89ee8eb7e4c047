import LeaklessCore
import LeaklessModels
import LeaklessImaging

/// export: the benchmark in VLSBench's own layout, so its evaluation code runs unchanged:
/// `data.json`, a JSON array of {instruction_id, instruction, image_path, category,
/// sub_category, source, image_description, safety_reason}, and the images under `imgs/` as PNG.
/// The folder is built under a temporary name and moved into place by `commit()`; an exporter
/// dropped without a commit removes it.
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
    /// Each image is converted once, however many pairs share it; only the pairs' distinct images
    /// are held.
    private var pngCache: [ContentHash: [UInt8]] = [:]
    public private(set) var perCategory: [String: Int] = [:]

    public init(folder: String, blobs: BlobStore) throws {
        self.folder = folder
        self.blobs = blobs
        temporary = FileSystem.join(FileSystem.parent(of: folder), ".\(FileSystem.lastComponent(of: folder)).tmp-\(ProcessIdentity.current)")
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
        let png: [UInt8]
        if let converted = pngCache[blob] {
            png = converted
        } else {
            let bytes = try FileSystem.read(blobs.path(for: blob, format: format))
            png = format == .png ? bytes : try ImageCodec.encodePNG(try ImageCodec.decode(bytes))
            pngCache[blob] = png
        }
        let index = entries.count
        let imagePath = "imgs/\(index).png"
        try AtomicFile.write(png, to: FileSystem.join(temporary, imagePath))
        let category = try record.requireString("category")
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

    /// Writes data.json and moves the finished folder into place.
    public func commit() throws {
        try AtomicFile.write(JSONWriter.pretty(.array(entries), keyOrder: Self.fields), to: FileSystem.join(temporary, "data.json"))
        try FileSystem.replaceDirectory(folder, with: temporary)
        committed = true
    }
}

/// The export stage as a record stage: pairs in, the folder out (its records, the exported pairs,
/// are the stage's JSONL output); unreadable images are rejects.
public struct ExportStage: RecordStage {
    let exporter: VLSBenchExporter

    public init(context: StageContext, folder: String) throws {
        exporter = try VLSBenchExporter(folder: folder, blobs: BlobStore(folder: context.blobs))
    }

    public mutating func process(_ record: Record) throws -> [StageOutput] {
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
        try exporter.commit()
        return []
    }

    public var extraStats: [String: JSONValue] {
        ["pairs_per_category": .object(exporter.perCategory.mapValues { .int(Int64($0)) })]
    }
}
