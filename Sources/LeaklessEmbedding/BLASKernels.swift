import CCoreShims
import COpenBLAS
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// OpenBLAS picks its kernels when it loads, for the processor it recognises; a processor newer
/// than the library gets its slowest, generic ones (Prescott: SSE3), a quarter of the speed.
/// When that happened and nobody chose a core (`OPENBLAS_CORETYPE` unset), the program runs
/// itself again with the core its processor can run: SkylakeX with AVX-512, Haswell with
/// AVX2 and FMA. A core someone set is never changed.
public enum BLASKernels {
    public static var current: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    public static func useTheProcessorsKernels() {
        let environment = ProcessInfo.processInfo.environment
        guard environment["OPENBLAS_CORETYPE"] == nil, environment["LEAKLESS_BLAS_CHOSEN"] == nil,
            current.lowercased() == "prescott"
        else { return }
        let core: String
        switch leakless_cpu_vector_level() {
        case 2: core = "SkylakeX"
        case 1: core = "Haswell"
        default: return
        }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv("LEAKLESS_BLAS_CHOSEN", core, 1)
        // Only a new image reads the variable; if exec fails, go on with the kernels there are.
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }
}
