import LeaklessCore

/// SplitMix64: a small, fast generator whose sequence is fixed by its seed on every platform, so
/// a builtin stage's choices are repeatable.
public struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// Seeded from a run seed and a record's content, so each record's choices are its own and do
    /// not shift when other records are added or removed.
    public init(seed: Int64, salt: String) {
        let hash = ContentHash(ofString: "\(seed):\(salt)").hex
        state = UInt64(hash.prefix(16), radix: 16) ?? 0
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
