/// The release of leakless, as `leakless --version` prints it.
public enum LeaklessVersion {
    public static let current = "0.5.0"
}
