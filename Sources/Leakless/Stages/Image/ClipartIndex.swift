import Foundation
import LeaklessCore

/// The Open Clip Art Library as Debian packages it (`openclipart-svg`, `openclipart-png`): about
/// 8,000 public-domain pictures under `svg/` and `png/`, in folders that name what they show
/// (`tools/weapons/ak47_01.svg`), each SVG carrying its title and keywords. The index holds, for
/// each distinct picture, its PNG, title, keywords and folder words; it is built once from the
/// SVG metadata and kept in `<cache>/pool-index/`, keyed by the files' names, sizes and times.
struct ClipartIndex: Sendable {
    struct Entry: Sendable, Equatable {
        /// Keywords past these are mostly synonyms and tags; they would only lengthen the caption.
        static let captionKeywords = 10
        /// The PNG, relative to the collection's folder (`png/tools/weapons/ak47_01.png`).
        let file: String
        let title: String
        let keywords: [String]
        /// The words of every folder the picture is filed under.
        let folders: [String]
        let license: String

        /// What matching reads: the title, the first keywords and the folder words.
        var caption: String {
            var parts = [title.isEmpty ? "" : title + "."]
            if !keywords.isEmpty { parts.append(keywords.prefix(Self.captionKeywords).joined(separator: ", ") + ".") }
            if !folders.isEmpty { parts.append("(" + folders.joined(separator: " ") + ")") }
            return parts.filter { !$0.isEmpty }.joined(separator: " ")
        }

        var json: JSONValue {
            .object(["file": .string(file), "title": .string(title), "keywords": .array(keywords.map(JSONValue.string)),
                     "folders": .array(folders.map(JSONValue.string)), "license": .string(license)])
        }

        init(file: String, title: String, keywords: [String], folders: [String], license: String) {
            self.file = file
            self.title = title
            self.keywords = keywords
            self.folders = folders
            self.license = license
        }

        init(json: JSONValue) throws {
            guard let file = json["file"]?.stringValue, let title = json["title"]?.stringValue, let keywords = json["keywords"]?.stringArray,
                let folders = json["folders"]?.stringArray, let license = json["license"]?.stringValue
            else { throw RecordError("not a clip-art index entry") }
            self.init(file: file, title: title, keywords: keywords, folders: folders, license: license)
        }
    }

    static let format = "openclipart-index-1"
    static let publicDomain = "Public domain (Creative Commons Public Domain Dedication)"

    let folder: String
    let entries: [Entry]
    /// Identifies the collection's files: the index file's name, and the embeddings'.
    let key: String

    /// The index of the collection in `folder`, read from `cacheFolder` when it is there and
    /// built (then kept there) when not.
    static func load(folder: String, cacheFolder: String, progress: ((String) -> Void)? = nil) throws -> ClipartIndex {
        let svgRoot = FileSystem.join(folder, "svg"), pngRoot = FileSystem.join(folder, "png")
        guard FileSystem.isDirectory(svgRoot), FileSystem.isDirectory(pngRoot) else {
            throw RecordError("\(folder) has no svg/ and png/ folders of the Open Clip Art Library: install the Debian packages openclipart-svg and openclipart-png (scripts/setup does), or set 'clipart' to an empty string")
        }
        let listing = try svgFiles(under: svgRoot)
        var identity = Self.format + "\n" + folder + "\n"
        for file in listing { identity += "\(file.relative)\t\(file.size)\t\(file.modified)\n" }
        let key = ContentHash(ofString: identity).hex
        let cached = FileSystem.join(cacheFolder, "pool-index", "openclipart-\(key).jsonl")
        if FileSystem.exists(cached) {
            let reader = try JSONLReader(path: cached)
            var entries: [Entry] = []
            while let (line, record) = try reader.nextRecord() {
                do {
                    entries.append(try Entry(json: .object(record.fields)))
                } catch {
                    throw LocatedError(path: cached, line: line, message: "\(error) (delete the file to build the index again)")
                }
            }
            return ClipartIndex(folder: folder, entries: entries, key: key)
        }
        progress?("indexing the clip art in \(folder) (\(listing.count) SVG files; once, kept in \(FileSystem.parent(of: cached)))")
        let entries = try build(listing, svgRoot: svgRoot, pngRoot: pngRoot)
        let writer = try JSONLWriter(path: cached)
        do {
            for entry in entries { try writer.write(json: entry.json) }
            try writer.commit()
        } catch {
            writer.discard()
            throw error
        }
        return ClipartIndex(folder: folder, entries: entries, key: key)
    }

    struct Listed {
        let relative: String
        let size: Int
        let modified: Int
        /// The file a link points to, relative to `svg/`; itself when it is no link.
        let target: String
    }

    /// The SVG files under `root` by name, size and modification time (each file's own status:
    /// no owner or group look-ups), with the file each link points to; a link that leaves the
    /// collection is not followed, and linked folders are not entered.
    private static func svgFiles(under root: String) throws -> [Listed] {
        guard let resolved = realpath(root, nil) else { throw RecordError("cannot list \(root)") }
        let resolvedRoot = String(cString: resolved)
        free(resolved)
        var listed: [Listed] = []
        func walk(_ relative: String) throws {
            let folder = relative.isEmpty ? root : FileSystem.join(root, relative)
            guard let directory = opendir(folder) else { throw RecordError("cannot list \(folder)") }
            defer { closedir(directory) }
            while let entry = readdir(directory) {
                let name = FileSystem.entryName(entry)
                if name == "." || name == ".." { continue }
                let item = relative.isEmpty ? name : relative + "/" + name
                let path = FileSystem.join(root, item)
                var info = stat()
                guard lstat(path, &info) == 0 else { continue }
                let kind = info.st_mode & S_IFMT
                if kind == S_IFDIR {
                    try walk(item)
                    continue
                }
                guard name.hasSuffix(".svg") else { continue }
                var target = item
                if kind == S_IFLNK {
                    guard let real = realpath(path, nil) else { continue }
                    let resolvedPath = String(cString: real)
                    free(real)
                    guard resolvedPath.hasPrefix(resolvedRoot + "/") else { continue }
                    target = String(resolvedPath.dropFirst(resolvedRoot.count + 1))
                }
                listed.append(Listed(relative: item, size: Int(info.st_size), modified: Int(info.st_mtim.tv_sec), target: target))
            }
        }
        try walk("")
        return listed.sorted { $0.relative < $1.relative }
    }

    private static func build(_ listing: [Listed], svgRoot: String, pngRoot: String) throws -> [Entry] {
        // One entry per real file, with the folder words of every place a link files it under.
        var folders: [String: [String]] = [:]
        for file in listing {
            var words = folders[file.target] ?? []
            for component in file.relative.split(separator: "/").dropLast() {
                for word in component.split(whereSeparator: { $0 == "_" || $0 == "-" || $0 == " " }) where !words.contains(String(word)) {
                    words.append(String(word))
                }
            }
            folders[file.target] = words
        }
        var entries: [Entry] = []
        for target in folders.keys.sorted() {
            let png = String(target.dropLast(4)) + ".png"
            guard FileSystem.exists(FileSystem.join(pngRoot, png)) else { continue }
            let text = String(decoding: try FileSystem.read(FileSystem.join(svgRoot, target)), as: UTF8.self)
            let metadata = SVGMetadata(text)
            entries.append(Entry(file: "png/" + png, title: metadata.title, keywords: metadata.keywords, folders: folders[target] ?? [],
                                 license: metadata.license.map { "\(publicDomain) <\($0)>" } ?? publicDomain))
        }
        return entries
    }
}

/// The work's title, keywords and licence from an SVG's RDF metadata (`cc:Work`): `dc:title`,
/// the `rdf:li` of `dc:subject`, and `cc:license`'s resource.
struct SVGMetadata {
    var title = ""
    var keywords: [String] = []
    var license: String?

    init(_ svg: String) {
        guard let workStart = svg.range(of: "<cc:Work") else { return }
        let rest = svg[workStart.upperBound...]
        let work = rest.range(of: "</cc:Work>").map { rest[..<$0.lowerBound] } ?? rest
        // The work's own title: the first dc:title not inside an agent (creator, publisher).
        var agentFree = String(work)
        while let start = agentFree.range(of: "<cc:Agent"), let end = agentFree.range(of: "</cc:Agent>", range: start.upperBound..<agentFree.endIndex) {
            agentFree.removeSubrange(start.lowerBound..<end.upperBound)
        }
        title = Self.element("dc:title", in: Substring(agentFree)).map(Self.clean) ?? ""
        if let subject = Self.element("dc:subject", in: work) {
            var seen = Set<String>()
            var remaining = subject
            while let start = remaining.range(of: "<rdf:li>"), let end = remaining.range(of: "</rdf:li>", range: start.upperBound..<remaining.endIndex) {
                let keyword = Self.clean(remaining[start.upperBound..<end.lowerBound])
                if !keyword.isEmpty, seen.insert(keyword.lowercased()).inserted { keywords.append(keyword) }
                remaining = remaining[end.upperBound...]
            }
        }
        if let start = work.range(of: "<cc:license"), let resource = work[start.upperBound...].range(of: "rdf:resource=\"") {
            let value = work[resource.upperBound...].prefix { $0 != "\"" }
            if !value.isEmpty { license = String(value) }
        }
    }

    private static func element(_ name: String, in text: Substring) -> Substring? {
        guard let open = text.range(of: "<\(name)") else { return nil }
        guard let close = text[open.upperBound...].range(of: ">") else { return nil }
        if text[..<close.lowerBound].hasSuffix("/") { return "" }
        guard let end = text.range(of: "</\(name)>", range: close.upperBound..<text.endIndex) else { return nil }
        return text[close.upperBound..<end.lowerBound]
    }

    /// Entities decoded, tags dropped, spaces collapsed.
    static func clean(_ text: Substring) -> String {
        var result = ""
        var inTag = false
        for character in text {
            if character == "<" { inTag = true; continue }
            if character == ">" { inTag = false; continue }
            if !inTag { result.append(character) }
        }
        for (entity, value) in [("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&apos;", "'"), ("&#39;", "'"), ("&amp;", "&")] {
            result = result.replacingOccurrences(of: entity, with: value)
        }
        return result.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }
}
