import LeaklessCore
import LeaklessImaging

/// When two images are near duplicates: one hash within its radius and the other within its
/// looser confirmation bound. pHash misses some crops that dHash still sees and the other way
/// round; each confirms the other, which keeps precision while recall rises. Both radii stay at
/// 11 or below, so the candidate search is a cheap multi-index search on each hash.
public struct NearDuplicateRule: Sendable, Equatable {
    public var phash: Int
    public var dhash: Int
    public var phashConfirm: Int
    public var dhashConfirm: Int

    /// Chosen on the labelled corpus of `leakless bench-dedup` (README: precision 0.9999,
    /// recall 0.959 of duplicate pairs there, in fast mode).
    public static let standard = NearDuplicateRule(phash: 10, dhash: 10, phashConfirm: 16, dhashConfirm: 20)

    public init(phash: Int, dhash: Int, phashConfirm: Int, dhashConfirm: Int) {
        self.phash = phash
        self.dhash = dhash
        self.phashConfirm = max(phash, phashConfirm)
        self.dhashConfirm = max(dhash, dhashConfirm)
    }

    public func matches(phash p: Int, dhash d: Int) -> Bool {
        (p <= phash && d <= dhashConfirm) || (d <= dhash && p <= phashConfirm)
    }

    public func matches(_ a: ImageHashes, _ b: ImageHashes) -> Bool {
        matches(phash: HammingSearch.distance(a.phash, b.phash), dhash: HammingSearch.distance(a.dhash, b.dhash))
    }

    /// Every near pair, each once (first < second), with its pHash distance.
    public func pairs(_ hashes: [ImageHashes], threads: Int = 1) -> [(Int32, Int32, Int)] {
        let byPhash = HammingSearch.pairs(hashes.map(\.phash), radius: phash, threads: threads)
        let byDhash = HammingSearch.pairs(hashes.map(\.dhash), radius: dhash, threads: threads)
        var seen = Set<Int64>()
        var result: [(Int32, Int32, Int)] = []
        for pair in byPhash + byDhash {
            let a = hashes[Int(pair.first)], b = hashes[Int(pair.second)]
            guard matches(a, b), seen.insert(Int64(pair.first) << 32 | Int64(pair.second)).inserted else { continue }
            result.append((pair.first, pair.second, HammingSearch.distance(a.phash, b.phash)))
        }
        return result
    }
}

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
