import LeaklessCore
import LeaklessImaging

/// SimHash (Charikar) of a text's word shingles: near-identical queries get hashes a few bits
/// apart. Words are normalised (case, punctuation) and the features are the words and the
/// pairs of neighbouring words, each hashed with XXH3.
public enum TextSimHash {
    public static func hash(_ text: String) -> UInt64 {
        hash(normalized: Text.normalized(text))
    }

    /// The SimHash of a text already normalised (`Text.normalized`): its words and word
    /// bigrams ("w1 w2"), each hashed from the text's own bytes, vote on each of the 64 bits.
    public static func hash(normalized: String) -> UInt64 {
        var text = normalized
        return text.withUTF8 { bytes -> UInt64 in
            // Word boundaries: single spaces separate the words of a normalised text.
            var starts: [Int] = [], ends: [Int] = []
            var start = 0
            for index in 0...bytes.count where index == bytes.count || bytes[index] == 0x20 {
                if index > start {
                    starts.append(start)
                    ends.append(index)
                }
                start = index + 1
            }
            guard !starts.isEmpty else { return 0 }
            return withUnsafeTemporaryAllocation(of: Int32.self, capacity: 64) { weights -> UInt64 in
                weights.initialize(repeating: 0)
                let raw = UnsafeRawBufferPointer(bytes)
                func vote(_ from: Int, _ to: Int) {
                    let value = ContentHash.xxh64(UnsafeRawBufferPointer(rebasing: raw[from..<to]))
                    for bit in 0..<64 { weights[bit] &+= Int32(truncatingIfNeeded: (value >> UInt64(bit)) & 1) &* 2 &- 1 }
                }
                for word in starts.indices { vote(starts[word], ends[word]) }
                for word in starts.indices.dropLast() { vote(starts[word], ends[word + 1]) }
                var result: UInt64 = 0
                for bit in 0..<64 where weights[bit] > 0 { result |= 1 << UInt64(bit) }
                return result
            }
        }
    }
}
