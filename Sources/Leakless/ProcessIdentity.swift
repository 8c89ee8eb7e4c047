#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

enum ProcessIdentity {
    static var current: Int32 { getpid() }
}
