import CCoreShims
import Foundation

/// Two items whose 64-bit hashes differ in `distance` bits; `first` < `second`.
public struct HammingPair: Hashable, Sendable, Comparable {
    public let first: Int32
    public let second: Int32
    public let distance: UInt8

    public init(_ first: Int32, _ second: Int32, distance: UInt8) {
        self.first = first
        self.second = second
        self.distance = distance
    }

    public static func < (a: HammingPair, b: HammingPair) -> Bool {
        (a.first, a.second) < (b.first, b.second)
    }
}

/// All pairs of 64-bit hashes within a Hamming radius, without comparing every pair.
///
/// Multi-index hashing (Norouzi, Punjani and Fleet): the 64 bits are cut into four 16-bit
/// chunks. Two hashes within `radius` bits differ in at most `radius / 4` bits in at least one
/// chunk (pigeonhole), so each chunk's table is searched by joining every bucket with the
/// buckets whose key is within `radius / 4` bits of its own; a pair is reported from the first
/// chunk that finds it. Buckets are joined as contiguous runs of hashes sorted by chunk value, so
/// the inner loop streams memory. For radius 10 or 11 that is 137 bucket keys per bucket instead of
/// all N. `bruteForce` is the reference the index is tested against.
public enum HammingSearch {
    public static func distance(_ a: UInt64, _ b: UInt64) -> Int { (a ^ b).nonzeroBitCount }

    /// Every pair with distance <= radius, sorted.
    public static func bruteForce(_ hashes: [UInt64], radius: Int) -> [HammingPair] {
        var pairs: [HammingPair] = []
        hashes.withUnsafeBufferPointer { h in
            for i in 0..<h.count {
                let a = h[i]
                for j in (i + 1)..<max(i + 1, h.count) {
                    let d = (a ^ h[j]).nonzeroBitCount
                    if d <= radius { pairs.append(HammingPair(Int32(i), Int32(j), distance: UInt8(d))) }
                }
            }
        }
        return pairs
    }

    /// Every pair with distance <= radius, sorted; `threads` share each chunk's buckets.
    public static func pairs(_ hashes: [UInt64], radius: Int, threads: Int = 1) -> [HammingPair] {
        precondition(hashes.count < Int(Int32.max), "too many hashes")
        guard radius >= 0, hashes.count > 1 else { return [] }
        if radius >= 64 { return bruteForce(hashes, radius: radius) }
        let chunkRadius = radius / 4
        let masks = (0..<65536).filter { $0.nonzeroBitCount <= chunkRadius }.map { UInt16($0) }
        var found: [HammingPair] = []
        for chunk in 0..<4 {
            let table = ChunkTable(hashes, chunk: chunk)
            let workers = max(1, threads)
            let parts = WorkerPool.map(count: workers, workers: workers, makeState: {}) { _, worker in
                table.join(first: worker, step: workers, masks: masks, radius: radius, chunk: chunk, chunkRadius: chunkRadius)
            }
            for part in parts { found += part }
        }
        found.sort()
        return found
    }

    @inline(__always)
    static func chunkValue(_ hash: UInt64, _ chunk: Int) -> Int { Int(truncatingIfNeeded: (hash >> (16 * UInt64(chunk))) & 0xFFFF) }

    /// One chunk's table: the hashes and their indices sorted by the chunk's 16 bits, and where
    /// each of the 65,536 buckets starts.
    struct ChunkTable {
        var starts = [Int32](repeating: 0, count: 65537)
        var sortedHashes: [UInt64]
        var sortedIndices: [Int32]

        init(_ hashes: [UInt64], chunk: Int) {
            for hash in hashes { starts[HammingSearch.chunkValue(hash, chunk) + 1] += 1 }
            for key in 0..<65536 { starts[key + 1] += starts[key] }
            var fill = starts
            sortedHashes = [UInt64](repeating: 0, count: hashes.count)
            sortedIndices = [Int32](repeating: 0, count: hashes.count)
            for (index, hash) in hashes.enumerated() {
                let key = HammingSearch.chunkValue(hash, chunk)
                let slot = Int(fill[key])
                fill[key] += 1
                sortedHashes[slot] = hash
                sortedIndices[slot] = Int32(index)
            }
        }

        /// Joins each bucket in `keys` (from `first`, every `step`) with itself and with every
        /// bucket at a higher key within the chunk radius (in C: see HammingJoin.h).
        func join(first: Int, step: Int, masks: [UInt16], radius: Int, chunk: Int, chunkRadius: Int) -> [HammingPair] {
            var list = leakless_pair_list()
            defer { leakless_pair_list_free(&list) }
            let status = sortedHashes.withUnsafeBufferPointer { h in
                sortedIndices.withUnsafeBufferPointer { ids in
                    starts.withUnsafeBufferPointer { s in
                        masks.withUnsafeBufferPointer { m in
                            leakless_hamming_join(
                                h.baseAddress, ids.baseAddress, s.baseAddress, m.baseAddress, m.count, Int32(first), Int32(step),
                                Int32(radius), Int32(chunk), Int32(chunkRadius), &list)
                        }
                    }
                }
            }
            precondition(status == 0, "out of memory in the Hamming search")
            return (0..<list.count).map { HammingPair(list.first[$0], list.second[$0], distance: list.distance[$0]) }
        }
    }
}
