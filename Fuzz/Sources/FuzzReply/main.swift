import FuzzSupport
import LeaklessCore
import LeaklessModels

/// Reading JSON out of a model's reply, on arbitrary text: a value or nil, in linear time.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReply(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    if let value = StructuredReply.extractJSON(text) {
        precondition(value.objectValue != nil || value.arrayValue != nil)
    }
    _ = StructuredReply.syntaxProblem(text)
    _ = StructuredReply.looksLikeRefusal(text)
    return 0
}

@_cdecl("FuzzReply_main")
public func fuzzReplyMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzReply)
}
