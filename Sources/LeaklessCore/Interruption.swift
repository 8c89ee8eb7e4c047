import CCoreShims

/// Ctrl-C for long stages: after `install()`, the first SIGINT or SIGTERM only sets a flag;
/// workers stop taking new work and the stage writes what finished.
public enum Interruption {
    public static func install() { leakless_interrupt_install() }
    public static var requested: Bool { leakless_interrupted() != 0 }
    /// Stops the process's work as Ctrl-C would (a budget reached, a fatal endpoint error).
    public static func request() { leakless_interrupt_request() }

    /// The driver's side: signals go on to the stage process being waited for.
    public static func forwardToChildren() { leakless_forward_install() }
    /// The signal the driver received (SIGINT, SIGTERM, SIGHUP), or nil.
    public static var receivedSignal: Int32? {
        let number = leakless_forward_received()
        return number == 0 ? nil : number
    }

    static func forward(to pid: Int32) { leakless_forward_to(pid) }

    /// A stage process ends (SIGTERM) when the driver that started it dies, so no stage runs on
    /// unwatched; false when that driver is already gone.
    public static func endWithParent(_ parent: Int32) -> Bool { leakless_exit_with_parent(parent) == 0 }
}
