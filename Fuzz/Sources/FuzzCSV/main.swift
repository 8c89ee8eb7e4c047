import FuzzSupport
import Leakless
import LeaklessCore

/// The importers' RFC 4180 reader on arbitrary text: rows or one located error.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    do {
        let table = try CSVTable(path: "input.csv", text: text)
        for row in table.rows { precondition(row.line >= 1) }
    } catch is LocatedError {
    } catch {
        fatalError("not a located error: \(error)")
    }
    return 0
}

@_cdecl("FuzzCSV_main")
public func fuzzCSVMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzCSV)
}
