import Foundation
import LeaklessCore

/// One image/query pair of another benchmark, in the shape the detector audits: the query and
/// what is known of the image.
public struct AuditItem: Sendable {
    public var id: String
    public var query: String
    /// What the image carries, where the benchmark says.
    public var description: String?
    public var keyPhrase: String?
    public var caption: String?
    public var category: String?
    public var subCategory: String?
    public var image: String?
    /// The benchmark's own label of the text, where it has one: `harmful` (a request unsafe as
    /// text alone) or `clean` (written to carry no risk by itself).
    public var label: String?
    /// Where it was read: `FILE:LINE` or `FILE: record N`.
    public var location: String

    public init(id: String, query: String, location: String) {
        self.id = id
        self.query = query
        self.location = location
    }

    /// The terms that name what the image shows, for the detector's overlap check.
    public var context: DetectionContext {
        DetectionContext(description: [description, caption].compactMap { $0 }.joined(separator: " "), keyPhrases: keyPhrase.map { [$0] } ?? [])
    }
}

/// The benchmark formats `leakless audit` reads, each a small adapter to `AuditItem`.
public enum BenchmarkFormat: String, CaseIterable, Sendable {
    case vlsbench, mmsafetybench, figstep
    case harmbenchMM = "harmbench-mm"
    case jailbreakv, vlsafe, vlguard, siuo, mossbench, msts, jsonl

    /// The field the query is read from unless `--query-field` names another.
    public var defaultQueryField: String {
        switch self {
        case .vlsbench: return "instruction"
        case .mmsafetybench: return "Rephrased Question(SD)"
        case .figstep: return "question"
        case .harmbenchMM: return "Behavior"
        case .jailbreakv: return "jailbreak_query"
        case .vlsafe: return "query"
        case .vlguard: return "instruction"
        case .siuo: return "question"
        case .mossbench: return "question"
        case .msts: return "prompt_text"
        case .jsonl: return "query"
        }
    }
}

public struct ImportOptions: Sendable {
    /// Read the query from this field instead of the format's default.
    public var queryField: String?
    /// jsonl: AuditItem field -> the file's field (query, description, key_phrase, caption,
    /// category, sub_category, image, id, label).
    public var mapping: [String: String] = [:]

    public init(queryField: String? = nil, mapping: [String: String] = [:]) {
        self.queryField = queryField
        self.mapping = mapping
    }
}

/// Reads a benchmark in its own release format. A malformed file is an error naming the file
/// and the line (CSV, JSONL) or record (JSON), and what was expected.
public enum BenchmarkImporter {
    public static func read(_ path: String, format: BenchmarkFormat, options: ImportOptions = ImportOptions()) throws -> [AuditItem] {
        let query = options.queryField ?? format.defaultQueryField
        switch format {
        case .vlsbench: return try vlsbench(path, query: query)
        case .mmsafetybench: return try mmsafetybench(path, query: query)
        case .figstep, .harmbenchMM, .jailbreakv, .msts: return try csv(path, format: format, query: query)
        case .vlsafe: return try vlsafe(path, query: query)
        case .vlguard: return try vlguard(path, query: options.queryField)
        case .siuo: return try siuo(path, query: query)
        case .mossbench: return try mossbench(path, query: query)
        case .jsonl:
            var items: [AuditItem] = []
            try jsonl(path, options: options) { items.append($0) }
            return items
        }
    }

    /// Each item in the file's order, without holding them all where the format allows it
    /// (JSONL is read line by line; the JSON and CSV formats are parsed whole first).
    public static func forEach(_ path: String, format: BenchmarkFormat, options: ImportOptions = ImportOptions(),
                               _ visit: (AuditItem) throws -> Void) throws {
        if format == .jsonl {
            try jsonl(path, options: options, visit)
        } else {
            for item in try read(path, format: format, options: options) { try visit(item) }
        }
    }

    // MARK: - JSON arrays

    static func vlsbench(_ path: String, query: String) throws -> [AuditItem] {
        try jsonArray(path, format: "vlsbench", required: [query, "image_description", "category"]) { record, location in
            var item = AuditItem(id: try record.text("instruction_id") ?? location, query: try record.string(query), location: location)
            item.description = try record.text("image_description")
            item.category = try record.text("category")
            item.subCategory = try record.text("sub_category")
            item.image = try record.text("image_path")
            item.label = query == "instruction" ? "clean" : nil
            return [item]
        }
    }

    static func vlguard(_ path: String, query: String?) throws -> [AuditItem] {
        try jsonArray(path, format: "vlguard", required: ["id", "image", "instr-resp"]) { record, location in
            guard case .array(let turns)? = record.fields["instr-resp"] else {
                throw LocatedError(path: path, line: nil, message: "\(location): 'instr-resp' must be a list of {instruction | safe_instruction | unsafe_instruction, response}")
            }
            let id = try record.string("id")
            return try turns.enumerated().compactMap { index, turn in
                guard let object = turn.objectValue else {
                    throw LocatedError(path: path, line: nil, message: "\(location): instr-resp \(index + 1) must be an object")
                }
                let keys = query.map { [$0] } ?? ["instruction", "safe_instruction", "unsafe_instruction"]
                guard let key = keys.first(where: { object[$0] != nil }) else {
                    if query != nil { return nil }
                    throw LocatedError(path: path, line: nil, message: "\(location): instr-resp \(index + 1) has none of instruction, safe_instruction, unsafe_instruction")
                }
                guard let text = object[key]?.stringValue else {
                    throw LocatedError(path: path, line: nil, message: "\(location): instr-resp \(index + 1): '\(key)' must be a string")
                }
                var item = AuditItem(id: "\(id)#\(index + 1)", query: text, location: "\(location), instr-resp \(index + 1)")
                item.image = try record.text("image")
                item.category = try record.text("harmful_category")
                item.subCategory = try record.text("harmful_subcategory")
                item.label = key == "unsafe_instruction" ? "harmful" : key == "safe_instruction" ? "clean" : nil
                return item
            }
        }
    }

    static func siuo(_ path: String, query: String) throws -> [AuditItem] {
        try jsonArray(path, format: "siuo", required: ["question_id", query]) { record, location in
            var item = AuditItem(id: try record.text("question_id") ?? location, query: try record.string(query), location: location)
            item.image = try record.text("image")
            item.category = try record.text("category")
            item.label = "clean"
            return [item]
        }
    }

    static func mossbench(_ path: String, query: String) throws -> [AuditItem] {
        // The release's information.json is an object keyed by pid; an array of records is read too.
        try jsonArray(path, format: "mossbench", required: ["pid", query], keyedBy: "pid") { record, location in
            var item = AuditItem(id: try record.text("pid") ?? location, query: try record.string(query), location: location)
            item.image = try record.text("image")
            item.description = try record.text("description") ?? record.text("short description")
            item.label = "clean"
            return [item]
        }
    }

    /// One scenario file (an object keyed by id), or a folder of them; the file name is the
    /// scenario.
    static func mmsafetybench(_ path: String, query: String) throws -> [AuditItem] {
        let files: [String]
        if FileSystem.isDirectory(path) {
            files = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
                .filter { $0.hasSuffix(".json") && $0.first?.isNumber == true }.map { FileSystem.join(path, $0) }
            guard !files.isEmpty else { throw LocatedError(path: path, line: nil, message: "no scenario files (NN-Name.json) in this folder") }
        } else {
            files = [path]
        }
        var items: [AuditItem] = []
        for file in files {
            let value = try parseJSON(file)
            guard case .object(let entries) = value else {
                throw LocatedError(path: file, line: nil, message: "not an mmsafetybench scenario file: expected a JSON object keyed by id")
            }
            let scenario = FileSystem.lastComponent(of: file).replacingOccurrences(of: ".json", with: "")
            for key in entries.keys.sorted(by: { (Int($0) ?? Int.max, $0) < (Int($1) ?? Int.max, $1) }) {
                let location = "\(file): record \(key)"
                guard let object = entries[key]?.objectValue else {
                    throw LocatedError(path: file, line: nil, message: "record \(key): expected an object")
                }
                let record = SourceRecord(fields: object)
                var item: AuditItem
                do {
                    item = AuditItem(id: "\(scenario)/\(key)", query: try record.string(query), location: location)
                    item.keyPhrase = try record.text("Key Phrase")
                } catch let error as RecordError {
                    throw LocatedError(path: file, line: nil, message: "record \(key): \(error.description)")
                }
                item.category = scenario
                item.label = query == "Question" || query == "Changed Question" ? "harmful" : query.hasPrefix("Rephrased Question") ? "clean" : nil
                items.append(item)
            }
        }
        return items
    }

    // MARK: - CSV

    /// Which columns of a CSV format give what.
    struct Columns {
        let required: [String]
        /// Joined with "/" into the item's id.
        let id: [String]
        var description: String?
        var keyPhrase: String?
        var category: String?
        var subCategory: String?
        var image: String?
        /// The query field whose texts the benchmark means as harmful requests.
        var harmfulQuery: String?
    }

    static let csvFormats: [BenchmarkFormat: Columns] = [
        .figstep: Columns(
            required: ["category_id", "task_id", "category_name", "question", "instruction"], id: ["category_id", "task_id"],
            keyPhrase: "instruction", category: "category_name", harmfulQuery: "question"),
        .harmbenchMM: Columns(
            required: ["Behavior", "BehaviorID", "SemanticCategory", "ImageFileName", "ImageDescription"], id: ["BehaviorID"],
            description: "ImageDescription", category: "SemanticCategory", subCategory: "FunctionalCategory", image: "ImageFileName"),
        .jailbreakv: Columns(
            required: ["id", "jailbreak_query", "redteam_query", "policy", "image_path"], id: ["id"],
            category: "policy", subCategory: "format", image: "image_path", harmfulQuery: "redteam_query"),
        .msts: Columns(
            required: ["hazard_category", "case_id", "unsafe_image_description", "prompt_id"], id: ["case_id", "prompt_id"],
            description: "unsafe_image_description", category: "hazard_category", subCategory: "hazard_subcategory", image: "unsafe_image_id"),
    ]

    static func csv(_ path: String, format: BenchmarkFormat, query: String) throws -> [AuditItem] {
        let columns = csvFormats[format]!
        let table = try CSVTable(path: path)
        try table.require(Array(Set(columns.required + [query])).sorted(), format: format.rawValue)
        return table.rows.map { row in
            let fields = row.fields
            var item = AuditItem(
                id: columns.id.map { fields[$0] ?? "" }.joined(separator: "/"), query: fields[query] ?? "", location: "\(path):\(row.line)")
            item.description = columns.description.flatMap { fields[$0] }
            item.keyPhrase = columns.keyPhrase.flatMap { fields[$0] }
            item.category = columns.category.flatMap { fields[$0] }
            item.subCategory = columns.subCategory.flatMap { fields[$0] }
            item.image = columns.image.flatMap { fields[$0] }
            item.label = columns.harmfulQuery == query ? "harmful" : nil
            return item
        }
    }

    // MARK: - JSONL

    static func vlsafe(_ path: String, query: String) throws -> [AuditItem] {
        var items: [AuditItem] = []
        try jsonLines(path, { items.append($0) }) { record, line in
            let location = "\(path):\(line)"
            var item = AuditItem(id: try record.text("image_id").map { "\($0)#\(line)" } ?? "\(line)", query: try record.string(query), location: location)
            item.caption = try record.text("caption")
            item.image = try record.text("image_id")
            return item
        }
        return items
    }

    static func jsonl(_ path: String, options: ImportOptions, _ visit: (AuditItem) throws -> Void) throws {
        let make = try jsonlItem(path, options: options)
        try jsonLines(path, visit, make)
    }

    /// The item of one record of a generic JSONL file, by the options' field mapping.
    static func jsonlItem(_ path: String, options: ImportOptions) throws -> @Sendable (SourceRecord, Int) throws -> AuditItem {
        let known = ["query", "description", "key_phrase", "caption", "category", "sub_category", "image", "id", "label"]
        if let unknown = options.mapping.keys.first(where: { !known.contains($0) }) {
            throw RecordError("--map: unknown target '\(unknown)' (expected one of: \(known.joined(separator: ", ")))")
        }
        let queryField = options.queryField ?? options.mapping["query"] ?? "query"
        let mapping = options.mapping
        return { record, line in
            let location = "\(path):\(line)"
            func mapped(_ name: String) throws -> String? { try mapping[name].flatMap { try record.text($0) } }
            var item = AuditItem(id: try mapped("id") ?? "\(line)", query: try record.string(queryField), location: location)
            item.description = try mapped("description")
            item.keyPhrase = try mapped("key_phrase")
            item.caption = try mapped("caption")
            item.category = try mapped("category")
            item.subCategory = try mapped("sub_category")
            item.image = try mapped("image")
            item.label = try mapped("label")
            return item
        }
    }

    /// Items in batches of up to `batch`, in the file's order; a JSONL file's lines are parsed on
    /// `threads` threads (the first bad line, by number, is the error), other formats read whole.
    /// `range`: only the items at these positions (a shard's part), the others not even parsed.
    public static func forEachBatch(_ path: String, format: BenchmarkFormat, options: ImportOptions = ImportOptions(), batch: Int,
                                    threads: Int, range: Range<Int>? = nil, _ visit: ([AuditItem]) throws -> Void) throws {
        guard format == .jsonl else {
            let all = try read(path, format: format, options: options)
            let items = range.map { Array(all[min($0.lowerBound, all.count)..<min($0.upperBound, all.count)]) } ?? all
            for start in stride(from: 0, to: items.count, by: batch) { try visit(Array(items[start..<min(items.count, start + batch)])) }
            return
        }
        let make = try jsonlItem(path, options: options)
        let reader = try LineReader(path: path)
        var lines: [(number: Int, bytes: [UInt8])] = []
        func parse() throws {
            let chunk = 256, chunks = (lines.count + chunk - 1) / chunk
            let taken = lines
            let parsed = WorkerPool.map(count: chunks, workers: threads, makeState: {}) { _, index -> [Result<AuditItem, LocatedError>] in
                taken[(index * chunk)..<min(taken.count, (index + 1) * chunk)].map { line in
                    do {
                        guard case .object(let object) = try JSONParser.parse(bytes: line.bytes) else { throw RecordError("expected a JSON object") }
                        return .success(try make(SourceRecord(fields: object), line.number))
                    } catch let error as JSONParser.SyntaxError {
                        return .failure(LocatedError(path: path, line: line.number, message: "invalid JSON: \(error.description)"))
                    } catch {
                        return .failure(LocatedError(path: path, line: line.number, message: "\(error)"))
                    }
                }
            }
            var items: [AuditItem] = []
            items.reserveCapacity(lines.count)
            for part in parsed { for result in part { items.append(try result.get()) } }
            lines.removeAll(keepingCapacity: true)
            try visit(items)
        }
        var position = 0
        while let bytes = try reader.nextContentLine() {
            defer { position += 1 }
            if let range {
                if position < range.lowerBound { continue }
                if position >= range.upperBound { break }
            }
            lines.append((reader.lineNumber, Array(bytes)))
            if lines.count >= batch { try parse() }
        }
        if !lines.isEmpty { try parse() }
    }

    /// How many items the benchmark holds (a JSONL file's non-blank lines, without parsing them).
    public static func count(_ path: String, format: BenchmarkFormat, options: ImportOptions = ImportOptions()) throws -> Int {
        guard format == .jsonl else { return try read(path, format: format, options: options).count }
        let reader = try LineReader(path: path)
        var count = 0
        while try reader.nextContentLine() != nil { count += 1 }
        return count
    }

    // MARK: - Shared readers

    static func parseJSON(_ path: String) throws -> JSONValue {
        let bytes = try FileSystem.read(path)
        do {
            return try JSONParser.parse(bytes: bytes)
        } catch let error as JSONParser.SyntaxError {
            let line = bytes.prefix(error.offset).filter { $0 == 0x0A }.count + 1
            throw LocatedError(path: path, line: line, message: "invalid JSON: \(error.message)")
        }
    }

    /// A JSON array of records; with `keyedBy`, also an object of records keyed by that field
    /// (the key fills the field where a record leaves it out), in key order, numbers by value.
    static func jsonArray(_ path: String, format: String, required: [String], keyedBy: String? = nil,
                          _ make: (SourceRecord, String) throws -> [AuditItem]) throws -> [AuditItem] {
        var entries: [(location: String, value: JSONValue)] = []
        switch try parseJSON(path) {
        case .array(let list):
            entries = list.enumerated().map { ("record \($0.offset + 1)", $0.element) }
        case .object(let keyed) where keyedBy != nil:
            let keys = keyed.keys.sorted { left, right in
                switch (Int(left), Int(right)) {
                case let (l?, r?): return l < r
                case (_?, nil): return true
                case (nil, _?): return false
                default: return left < right
                }
            }
            for key in keys {
                var value = keyed[key]!
                if case .object(var fields) = value, fields[keyedBy!] == nil {
                    fields[keyedBy!] = .string(key)
                    value = .object(fields)
                }
                entries.append(("record '\(key)'", value))
            }
        default:
            throw LocatedError(path: path, line: nil, message: "not a \(format) file: expected a JSON array of records\(keyedBy.map { " or an object of them keyed by \($0)" } ?? "")")
        }
        var items: [AuditItem] = []
        for (location, entry) in entries {
            guard let object = entry.objectValue else { throw LocatedError(path: path, line: nil, message: "\(location): expected an object, found \(entry.typeName)") }
            if let missing = required.first(where: { object[$0] == nil }) {
                throw LocatedError(path: path, line: nil, message: "\(location): missing field '\(missing)' (a \(format) record has \(required.joined(separator: ", ")))")
            }
            do {
                items += try make(SourceRecord(fields: object), "\(path): \(location)")
            } catch let error as RecordError {
                throw LocatedError(path: path, line: nil, message: "\(location): \(error.description)")
            }
        }
        return items
    }

    /// Lines of JSON objects, read as they are (a foreign `id` is just a field here).
    static func jsonLines(_ path: String, _ visit: (AuditItem) throws -> Void, _ make: (SourceRecord, Int) throws -> AuditItem) throws {
        let reader = try LineReader(path: path)
        while let bytes = try reader.nextContentLine() {
            let line = reader.lineNumber
            do {
                guard case .object(let object) = try JSONParser.parse(bytes: Array(bytes)) else {
                    throw RecordError("expected a JSON object")
                }
                let item = try make(SourceRecord(fields: object), line)
                try visit(item)
            } catch let error as JSONParser.SyntaxError {
                throw LocatedError(path: path, line: line, message: "invalid JSON: \(error.description)")
            } catch let error as RecordError {
                throw LocatedError(path: path, line: line, message: error.description)
            }
        }
    }
}

/// One record of a benchmark file, with its fields as the file has them.
struct SourceRecord: Sendable {
    let fields: [String: JSONValue]

    /// A field that must be a string.
    func string(_ key: String) throws -> String {
        guard let value = fields[key] else { throw RecordError("missing field '\(key)'") }
        guard case .string(let text) = value else { throw RecordError("field '\(key)' must be a string, found \(value.typeName)") }
        return text
    }

    /// An optional field as text: a string, or a number written out; null or absent is nil.
    func text(_ key: String) throws -> String? {
        switch fields[key] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        case .int(let number)?: return String(number)
        case .double(let number)?: return String(number)
        case let value?: throw RecordError("field '\(key)' must be a string, found \(value.typeName)")
        }
    }
}
