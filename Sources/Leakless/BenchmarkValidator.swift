import LeaklessCore
import LeaklessImaging

/// Checks an exported folder the way VLSBench's evaluation code will read it: data.json is an
/// array of objects with exactly the release's fields and types, ids are unique, and every
/// image_path names a readable image inside the folder.
public enum BenchmarkValidator {
    public struct Report: Sendable {
        public let pairs: Int
        public let images: Int
    }

    public static func validate(folder: String) throws -> Report {
        let path = FileSystem.join(folder, "data.json")
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes: try FileSystem.read(path))
        } catch let error as JSONParser.SyntaxError {
            throw LocatedError(path: path, line: nil, message: "invalid JSON: \(error)")
        }
        guard let entries = value.arrayValue else { throw LocatedError(path: path, line: nil, message: "expected a JSON array") }
        var ids = Set<Int64>()
        var images = Set<String>()
        for (index, entry) in entries.enumerated() {
            func fail(_ message: String) -> LocatedError {
                LocatedError(path: path, line: nil, message: "entry \(index): \(message)")
            }
            guard let fields = entry.objectValue else { throw fail("expected an object") }
            let expected = Set(VLSBenchExporter.fields)
            if let extra = Set(fields.keys).subtracting(expected).sorted().first { throw fail("unexpected field '\(extra)'") }
            for name in VLSBenchExporter.fields {
                guard let field = fields[name] else { throw fail("missing field '\(name)'") }
                if name == "instruction_id" {
                    guard let id = field.intValue else { throw fail("'instruction_id' must be an integer") }
                    guard ids.insert(id).inserted else { throw fail("duplicate instruction_id \(id)") }
                } else if field.stringValue?.isEmpty ?? true {
                    throw fail("'\(name)' must be a non-empty string")
                }
            }
            let imagePath = fields["image_path"]!.stringValue!
            guard !imagePath.hasPrefix("/"), !imagePath.split(separator: "/").contains("..") else {
                throw fail("image_path '\(imagePath)' leaves the folder")
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
