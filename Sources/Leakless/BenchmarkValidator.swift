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

    /// A folder in VLSBench's layout (data.json), or a Hugging Face imagefolder (metadata.jsonl).
    public static func validate(folder: String) throws -> Report {
        let dataPath = FileSystem.join(folder, "data.json"), metadataPath = FileSystem.join(folder, "metadata.jsonl")
        if !FileSystem.exists(dataPath) && FileSystem.exists(metadataPath) {
            let reader = try LineReader(path: metadataPath)
            var entries: [(String, [String: JSONValue])] = []
            while let bytes = try reader.nextLine() {
                let location = "line \(reader.lineNumber)"
                guard case .object(let fields)? = try? JSONParser.parse(bytes: Array(bytes)) else {
                    throw LocatedError(path: metadataPath, line: reader.lineNumber, message: "expected a JSON object")
                }
                entries.append((location, fields))
            }
            return try check(entries, path: metadataPath, folder: folder, imageField: "file_name")
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes: try FileSystem.read(dataPath))
        } catch let error as JSONParser.SyntaxError {
            throw LocatedError(path: dataPath, line: nil, message: "invalid JSON: \(error)")
        }
        guard let array = value.arrayValue else { throw LocatedError(path: dataPath, line: nil, message: "expected a JSON array") }
        let entries = try array.enumerated().map { index, entry -> (String, [String: JSONValue]) in
            guard let fields = entry.objectValue else { throw LocatedError(path: dataPath, line: nil, message: "entry \(index): expected an object") }
            return ("entry \(index)", fields)
        }
        return try check(entries, path: dataPath, folder: folder, imageField: "image_path")
    }

    static func check(_ entries: [(String, [String: JSONValue])], path: String, folder: String, imageField: String) throws -> Report {
        var ids = Set<Int64>()
        var images = Set<String>()
        let expected = VLSBenchExporter.fields.map { $0 == "image_path" ? imageField : $0 }
        for (location, fields) in entries {
            func fail(_ message: String) -> LocatedError {
                LocatedError(path: path, line: nil, message: "\(location): \(message)")
            }
            if let extra = Set(fields.keys).subtracting(expected).sorted().first { throw fail("unexpected field '\(extra)'") }
            for name in expected {
                guard let field = fields[name] else { throw fail("missing field '\(name)'") }
                if name == "instruction_id" {
                    guard let id = field.intValue else { throw fail("'instruction_id' must be an integer") }
                    guard ids.insert(id).inserted else { throw fail("duplicate instruction_id \(id)") }
                } else if field.stringValue?.isEmpty ?? true {
                    throw fail("'\(name)' must be a non-empty string")
                }
            }
            let imagePath = fields[imageField]!.stringValue!
            guard !imagePath.hasPrefix("/"), !imagePath.split(separator: "/").contains("..") else {
                throw fail("\(imageField) '\(imagePath)' leaves the folder")
            }
            if images.insert(imagePath).inserted {
                do {
                    _ = try ImageCodec.decode(try FileSystem.read(FileSystem.join(folder, imagePath)))
                } catch let error as ImageError {
                    throw fail("\(imagePath): \(error.message)")
                }
            }
        }
        return Report(pairs: entries.count, images: images.count)
    }
}
