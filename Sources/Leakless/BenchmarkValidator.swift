import LeaklessCore
import LeaklessImaging

/// Checks an exported folder the way VLSBench's evaluation code (or `datasets`' imagefolder
/// loader) will read it: data.json is an array of objects (metadata.jsonl one object a line)
/// with exactly the release's fields and types, ids are unique, and every image_path (file_name)
/// names a readable image inside the folder.
public enum BenchmarkValidator {
    public struct Report: Sendable {
        public let pairs: Int
        public let images: Int
    }

    /// Every problem found (up to `limit`), one a line, each naming the file and where in it.
    public struct Problems: Error, CustomStringConvertible {
        public let lines: [String]
        public let more: Int
        public var description: String {
            (lines + (more > 0 ? ["... and \(more) more"] : [])).joined(separator: "\n") + "\n\(lines.count + more) problem(s)"
        }
    }

    public static let limit = 50

    /// A folder in VLSBench's layout (data.json), a Hugging Face imagefolder (metadata.jsonl),
    /// or the data.json or metadata.jsonl file itself.
    public static func validate(folder given: String) throws -> Report {
        var folder = given
        if !FileSystem.isDirectory(given), ["data.json", "metadata.jsonl"].contains(FileSystem.lastComponent(of: given)) {
            folder = FileSystem.parent(of: given)
        }
        let dataPath = FileSystem.join(folder, "data.json"), metadataPath = FileSystem.join(folder, "metadata.jsonl")
        if !FileSystem.exists(dataPath) && FileSystem.exists(metadataPath) {
            let reader = try LineReader(path: metadataPath)
            var entries: [(String, [String: JSONValue])] = []
            while let bytes = try reader.nextLine() {
                guard case .object(let fields)? = try? JSONParser.parse(bytes: Array(bytes)) else {
                    throw LocatedError(path: metadataPath, line: reader.lineNumber, message: "expected a JSON object")
                }
                entries.append(("\(reader.lineNumber)", fields))
            }
            return try check(entries, path: metadataPath, folder: folder, imageField: "file_name")
        }
        guard FileSystem.exists(dataPath) else {
            throw LocatedError(path: folder, line: nil, message: "neither data.json nor metadata.jsonl is here: not an exported benchmark")
        }
        let bytes = try FileSystem.read(dataPath)
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes: bytes)
        } catch let error as JSONParser.SyntaxError {
            // Where a person looks in a pretty-printed file: line and column, not a byte offset.
            let before = bytes.prefix(error.offset)
            let line = before.filter { $0 == 0x0A }.count + 1
            let column = before.count - (before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0) + 1
            throw LocatedError(path: dataPath, line: line, message: "column \(column): invalid JSON: \(error.message)")
        }
        guard let array = value.arrayValue else { throw LocatedError(path: dataPath, line: nil, message: "expected a JSON array") }
        let entries = array.enumerated().map { index, entry in ("record \(index + 1)", entry.objectValue ?? [:]) }
        return try check(entries, path: dataPath, folder: folder, imageField: "image_path")
    }

    static func check(_ entries: [(String, [String: JSONValue])], path: String, folder: String, imageField: String) throws -> Report {
        var ids = Set<Int64>()
        var images = Set<String>()
        var problems: [String] = []
        var more = 0
        let expected = VLSBenchExporter.fields.map { $0 == "image_path" ? imageField : $0 }
        for (location, fields) in entries {
            // metadata.jsonl entries are located by line, data.json's by their place and id.
            let place = location.first?.isNumber == true ? "\(path):\(location)" : "\(path): \(location)"
            let label = place + (fields["instruction_id"]?.intValue.map { " (instruction_id \($0))" } ?? "")
            func problem(_ message: String) {
                if problems.count < limit { problems.append("\(label): \(message)") } else { more += 1 }
            }
            if fields.isEmpty {
                problem("expected an object with the fields \(expected.joined(separator: ", "))")
                continue
            }
            for extra in Set(fields.keys).subtracting(expected).sorted() { problem("unexpected field '\(extra)'") }
            for name in expected {
                guard let field = fields[name] else {
                    problem("missing field '\(name)'")
                    continue
                }
                if name == "instruction_id" {
                    guard let id = field.intValue else {
                        problem("'instruction_id' must be an integer")
                        continue
                    }
                    if !ids.insert(id).inserted { problem("duplicate instruction_id \(id)") }
                } else if field.stringValue?.isEmpty ?? true {
                    problem("'\(name)' must be a non-empty string")
                }
            }
            guard let imagePath = fields[imageField]?.stringValue, !imagePath.isEmpty else { continue }
            guard !imagePath.hasPrefix("/"), !imagePath.split(separator: "/").contains("..") else {
                problem("\(imageField) '\(imagePath)' leaves the folder")
                continue
            }
            if images.insert(imagePath).inserted {
                let file = FileSystem.join(folder, imagePath)
                guard FileSystem.exists(file) else {
                    problem("\(imageField) '\(imagePath)' does not exist")
                    continue
                }
                do {
                    _ = try ImageCodec.decode(try FileSystem.read(file))
                } catch let error as ImageError {
                    problem("\(imagePath): \(error.message)")
                }
            }
        }
        guard problems.isEmpty else { throw Problems(lines: problems, more: more) }
        return Report(pairs: entries.count, images: images.count)
    }
}
