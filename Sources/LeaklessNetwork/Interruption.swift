import CLeaklessShims

/// Ctrl-C for long stages: after `install()`, the first SIGINT or SIGTERM only sets a flag;
/// workers stop taking new work and the stage writes what finished.
public enum Interruption {
    public static func install() { leakless_interrupt_install() }
    public static var requested: Bool { leakless_interrupted() != 0 }
    /// Stops the process's work as Ctrl-C would (a budget reached, a fatal endpoint error).
    public static func request() { leakless_interrupt_request() }
}
