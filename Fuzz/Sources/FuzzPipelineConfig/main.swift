import FuzzSupport
import Leakless
import LeaklessCore

/// pipeline.yaml on arbitrary text: a configuration or one located error.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPipelineConfig(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    do {
        let document = try YAMLDocument.parse(text, path: "pipeline.yaml")
        _ = try PipelineConfig(document: document, path: "pipeline.yaml", definitions: StageRegistry.definitions)
    } catch let error as LocatedError {
        precondition(error.path == "pipeline.yaml")
    } catch {
        fatalError("not a located error: \(error)")
    }
    return 0
}

@_cdecl("FuzzPipelineConfig_main")
public func fuzzPipelineConfigMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzPipelineConfig)
}
