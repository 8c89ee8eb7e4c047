import FuzzSupport
import Foundation
import LeaklessCore

/// The JSONL reader on arbitrary bytes: every line is a record or a located error, never a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONL(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let path = "/dev/shm/leakless-fuzz-jsonl-\(getpid())"
    FileManager.default.createFile(atPath: path, contents: Data(bytes: start, count: count))
    defer { unlink(path) }
    do {
        let reader = try JSONLReader(path: path)
        while let (_, record) = try reader.nextRecord() {
            // What was read writes back to the same content.
            let again = try JSONParser.parse(bytes: JSONWriter.canonicalBytes(record.json))
            precondition(ContentHash(ofJSON: again) == ContentHash(ofJSON: record.json))
        }
    } catch is LocatedError {
    } catch {
        fatalError("not a located error: \(error)")
    }
    return 0
}

@_cdecl("FuzzJSONL_main")
public func fuzzJSONLMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzJSONL)
}
