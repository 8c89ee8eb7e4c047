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
