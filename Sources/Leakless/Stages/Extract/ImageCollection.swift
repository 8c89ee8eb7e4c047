import Foundation
import LeaklessCore

/// An existing image collection for the perception path, in one of four layouts (found in this
/// order):
/// - `coco`: COCO captions, `annotations/captions_*.json` with the images in the folder named
///   like the file's split (`val2017/`) or in the collection's own folder; licences per image
///   from the file's `licenses`.
/// - `vlsbench`: a benchmark in VLSBench's layout, `data.json` with `image_path` and
///   `image_description`.
/// - `imagefolder`: a Hugging Face imagefolder, `metadata.jsonl` (in the folder or a split
///   folder) with `file_name`, a caption field and any labels; licence from the `license:` line of
///   the front matter of its `README.md`.
/// - `folder`: any other folder, searched recursively for PNG and JPEG files, each captioned by
///   a `.txt` file of the same name beside it.
/// Every layout may hold a `collection.yaml` with `name`, `license` and `source`; without it the
/// name is the folder's. Nothing outside the folder is opened.
public struct ImageCollection: Sendable {
    public struct Item: Sendable {
        /// The image's path inside the collection.
        public let file: String
        public let caption: String?
        /// Other fields the collection gives (labels, categories), as strings.
        public let labels: [String: String]
        public let license: String
        /// Where this item was read from, for errors (file and line).
        public let origin: String
    }

    public let folder: String
    public let name: String
    public let layout: String
    public let license: String
    public let source: String
    public let items: [Item]

    /// Fields of a metadata line that describe the image, in order of preference (a label such as
    /// "unsafe" is kept with the labels, not taken for a caption).
    static let captionFields = ["caption", "text", "description", "image_description", "sentence", "prompt", "title"]
    static let imageExtensions = ["png", "jpg", "jpeg"]

    /// - Parameter licenses: licences given in the pipeline file, by collection name.
    public static func load(folder: String, licenses: [String: String] = [:]) throws -> ImageCollection {
        guard FileSystem.isDirectory(folder) else {
            throw LocatedError(path: folder, line: nil, message: "an image collection must be a folder")
        }
        var name = FileSystem.lastComponent(of: folder.hasSuffix("/") ? String(folder.dropLast()) : folder)
        var license: String?
        var source = ""
        let manifest = FileSystem.join(folder, "collection.yaml")
        if FileSystem.exists(manifest) {
            let reader = ConfigReader(path: manifest)
            let top = try reader.mapping(try YAMLDocument.load(path: manifest), "collection.yaml", keys: ["name", "license", "source"])
            if top["name"] != nil { name = try reader.string(top, "name") }
            if top["license"] != nil { license = try reader.string(top, "license") }
            if top["source"] != nil { source = try reader.string(top, "source") }
        }
        license = license ?? licenses[name]
        let layout: String
        var items: [Item]
        if let captions = try cocoCaptionFiles(folder) {
            layout = "coco"
            items = try captions.flatMap { try coco($0, folder: folder, fallback: license) }
        } else if FileSystem.exists(FileSystem.join(folder, "data.json")) {
            layout = "vlsbench"
            items = try vlsbench(folder, license: license)
        } else if let metadata = try imagefolderMetadata(folder) {
            layout = "imagefolder"
            license = license ?? frontMatterLicense(FileSystem.join(folder, "README.md"))
            items = try metadata.flatMap { try imagefolder($0, folder: folder, license: license) }
        } else {
            layout = "folder"
            items = try plainFolder(folder, license: license)
        }
        if source.isEmpty { source = "\(name) (\(layout) layout)" }
        return ImageCollection(folder: folder, name: name, layout: layout, license: license ?? "unknown", source: source, items: items)
    }

    /// The item's image file, inside the collection.
    public func path(of item: Item) throws -> String {
        switch FileSystem.resolve(item.file, inside: folder) {
        case .success(let path): return path
        case .failure(let error): throw LocatedError(path: item.origin, line: nil, message: error.description)
        }
    }

    // MARK: layouts

    static func cocoCaptionFiles(_ folder: String) throws -> [String]? {
        let annotations = FileSystem.join(folder, "annotations")
        guard FileSystem.isDirectory(annotations) else { return nil }
        let files = try FileManager.default.contentsOfDirectory(atPath: annotations)
            .filter { $0.hasPrefix("captions_") && $0.hasSuffix(".json") }.sorted()
        return files.isEmpty ? nil : files.map { FileSystem.join(annotations, $0) }
    }

    static func coco(_ path: String, folder: String, fallback: String?) throws -> [Item] {
        let document = try BenchmarkImporter.parseJSON(path)
        guard let images = document["images"]?.arrayValue, let annotations = document["annotations"]?.arrayValue else {
            throw LocatedError(path: path, line: nil, message: "not COCO captions: expected 'images' and 'annotations' lists")
        }
        var licenses: [Int64: String] = [:]
        for entry in document["licenses"]?.arrayValue ?? [] {
            if let id = entry["id"]?.intValue, let name = entry["name"]?.stringValue { licenses[id] = name }
        }
        var captions: [Int64: [String]] = [:]
        for (index, annotation) in annotations.enumerated() {
            guard let id = annotation["image_id"]?.intValue, let caption = annotation["caption"]?.stringValue else {
                throw LocatedError(path: path, line: nil, message: "annotation \(index + 1) needs 'image_id' and 'caption'")
            }
            captions[id, default: []].append(caption.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        // captions_val2017.json -> val2017/, when that folder is there.
        let split = String(FileSystem.lastComponent(of: path).dropFirst("captions_".count).dropLast(".json".count))
        let prefix = FileSystem.isDirectory(FileSystem.join(folder, split)) ? split + "/" : ""
        return try images.enumerated().map { index, image in
            guard let id = image["id"]?.intValue, let file = image["file_name"]?.stringValue else {
                throw LocatedError(path: path, line: nil, message: "image \(index + 1) needs 'id' and 'file_name'")
            }
            let license = image["license"]?.intValue.flatMap { licenses[$0] } ?? fallback ?? "unknown"
            return Item(file: prefix + file, caption: captions[id]?.first { !$0.isEmpty }, labels: ["coco_id": String(id)],
                        license: license, origin: "\(path) (image \(index + 1), id \(id))")
        }
    }

    static func vlsbench(_ folder: String, license: String?) throws -> [Item] {
        let path = FileSystem.join(folder, "data.json")
        guard let records = try BenchmarkImporter.parseJSON(path).arrayValue else {
            throw LocatedError(path: path, line: nil, message: "not VLSBench's layout: expected a JSON array of records")
        }
        return try records.enumerated().map { index, record in
            guard let file = record["image_path"]?.stringValue, !file.isEmpty else {
                throw LocatedError(path: path, line: nil, message: "record \(index + 1) has no 'image_path'")
            }
            var labels: [String: String] = [:]
            for key in ["category", "sub_category", "safety_reason", "source", "instruction"] {
                if let value = record[key]?.stringValue { labels[key] = value }
            }
            return Item(file: file, caption: record["image_description"]?.stringValue, labels: labels,
                        license: license ?? "unknown", origin: "\(path) (record \(index + 1))")
        }
    }

    static func imagefolderMetadata(_ folder: String) throws -> [String]? {
        var found: [String] = []
        if FileSystem.exists(FileSystem.join(folder, "metadata.jsonl")) { found.append("metadata.jsonl") }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: folder))?.sorted() ?? [] {
            let candidate = FileSystem.join(entry, "metadata.jsonl")
            if FileSystem.isDirectory(FileSystem.join(folder, entry)), FileSystem.exists(FileSystem.join(folder, candidate)) { found.append(candidate) }
        }
        return found.isEmpty ? nil : found
    }

    static func imagefolder(_ relative: String, folder: String, license: String?) throws -> [Item] {
        let path = FileSystem.join(folder, relative)
        let base = FileSystem.parent(of: relative)
        var items: [Item] = []
        let reader = try LineReader(path: path)
        while let line = try reader.nextContentLine() {
            let number = reader.lineNumber
            let value: JSONValue
            do {
                value = try JSONParser.parse(bytes: Array(line))
            } catch let error as JSONParser.SyntaxError {
                throw LocatedError(path: path, line: number, message: "invalid JSON: \(error.message)")
            }
            guard case .object(let fields) = value else { throw LocatedError(path: path, line: number, message: "expected a JSON object") }
            guard let file = fields["file_name"]?.stringValue, !file.isEmpty else {
                throw LocatedError(path: path, line: number, message: "missing 'file_name'")
            }
            var labels: [String: String] = [:]
            for (key, field) in fields where key != "file_name" {
                switch field {
                case .string(let text): labels[key] = text
                case .int(let number): labels[key] = String(number)
                case .bool(let flag): labels[key] = String(flag)
                default: continue
                }
            }
            let caption = captionFields.lazy.compactMap { labels[$0] }.first { !$0.isEmpty }
            items.append(Item(file: base.isEmpty || base == "." ? file : FileSystem.join(base, file), caption: caption, labels: labels,
                              license: labels["license"] ?? license ?? "unknown", origin: "\(path):\(number)"))
        }
        return items
    }

    static func plainFolder(_ folder: String, license: String?) throws -> [Item] {
        guard let enumerator = FileManager.default.enumerator(atPath: folder) else {
            throw LocatedError(path: folder, line: nil, message: "cannot list the folder")
        }
        var files: [String] = []
        while let relative = enumerator.nextObject() as? String {
            let lower = relative.lowercased()
            if imageExtensions.contains(where: { lower.hasSuffix("." + $0) }) { files.append(relative) }
        }
        return try files.sorted().map { file in
            let stem = file.prefix(upTo: file.lastIndex(of: ".")!)
            let sidecar = FileSystem.join(folder, stem + ".txt")
            var caption: String?
            if FileSystem.exists(sidecar) {
                caption = String(decoding: try FileSystem.read(sidecar), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            return Item(file: file, caption: caption?.isEmpty == false ? caption : nil, labels: [:], license: license ?? "unknown",
                        origin: FileSystem.join(folder, file))
        }
    }

    /// `license:` in a README's YAML front matter (the Hugging Face dataset card).
    static func frontMatterLicense(_ path: String) -> String? {
        guard let bytes = try? FileSystem.read(path) else { return nil }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.first?.trimmingCharacters(in: .whitespaces) == "---" else { return nil }
        for line in lines.dropFirst() {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text == "---" { break }
            if text.hasPrefix("license:") {
                let value = text.dropFirst("license:".count).trimmingCharacters(in: .whitespaces)
                return value.isEmpty ? nil : value
            }
        }
        return nil
    }
}
