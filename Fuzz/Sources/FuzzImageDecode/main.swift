import FuzzSupport
import LeaklessImaging

/// The PNG/JPEG decoder (C, with libpng's and libjpeg's longjmp errors caught) on arbitrary
/// bytes: an image within the pixel limit or an ImageError, never a crash or an overflow.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImageDecode(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    do {
        let image = try ImageCodec.decode(bytes, pixelLimit: 1 << 22)
        precondition(image.pixels.count == image.width * image.height * image.channels)
    } catch is ImageError {
    } catch {
        fatalError("not an image error: \(error)")
    }
    return 0
}

@_cdecl("FuzzImageDecode_main")
public func fuzzImageDecodeMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzImageDecode)
}
