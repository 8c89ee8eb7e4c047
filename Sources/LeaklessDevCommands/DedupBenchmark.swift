import Foundation
import LeaklessCore
import LeaklessImaging
import Leakless

/// The figures `leakless bench-dedup` reports: hashing throughput on a labelled near-duplicate
/// corpus (and the decode floor under it), precision and recall of duplicate pairs against the
/// corpus's ground truth, and the time and memory of grouping a million synthetic hashes.
public enum DedupBenchmark {
    /// A corpus made by `../shared/bench/make_corpus.py`: image files and `ground_truth.jsonl`
    /// ({file, group}; the same group means duplicates).
    public struct Corpus {
        public let folder: String
        public let files: [String]
        public let groups: [String]

        public init(folder: String, limit: Int? = nil) throws {
            self.folder = folder
            let truthPath = FileSystem.join(folder, "ground_truth.jsonl")
            let reader = try JSONLReader(path: truthPath)
            var groupOf: [String: String] = [:]
            while let (line, record) = try reader.nextRecord() {
                guard let file = record.string("file"), let group = record["group"] else {
                    throw LocatedError(path: truthPath, line: line, message: "expected 'file' and 'group'")
                }
                groupOf[file] = JSONWriter.canonical(group)
            }
            var names = groupOf.keys.sorted()
            if let limit { names = Array(names.prefix(limit)) }
            files = names
            groups = names.map { groupOf[$0]! }
        }

        public var paths: [String] { files.map { FileSystem.join(folder, $0) } }

        /// Pairs of files in the same group.
        public var truePairs: Int {
            Dictionary(grouping: groups, by: { $0 }).values.reduce(0) { $0 + $1.count * ($1.count - 1) / 2 }
        }
    }

    public struct Accuracy: Sendable {
        public let predicted: Int
        public let truePositives: Int
        public let truePairs: Int
        public var precision: Double { predicted == 0 ? 1 : Double(truePositives) / Double(predicted) }
        public var recall: Double { truePairs == 0 ? 1 : Double(truePositives) / Double(truePairs) }

        public var json: JSONValue {
            .object([
                "predicted_pairs": .int(Int64(predicted)), "true_positives": .int(Int64(truePositives)),
                "false_positives": .int(Int64(predicted - truePositives)), "true_pairs": .int(Int64(truePairs)),
                "precision": .double(rounded(precision, 4)), "recall": .double(rounded(recall, 4)),
            ])
        }
    }

    public static func accuracy(pairs: [(Int32, Int32, Int)], corpus: Corpus) -> Accuracy {
        let positives = pairs.filter { corpus.groups[Int($0.0)] == corpus.groups[Int($0.1)] }.count
        return Accuracy(predicted: pairs.count, truePositives: positives, truePairs: corpus.truePairs)
    }

    /// Pairs within `radius` of one hash alone.
    public static func pairs(_ hashes: [UInt64], radius: Int) -> [(Int32, Int32, Int)] {
        HammingSearch.pairs(hashes, radius: radius, threads: 2).map { ($0.first, $0.second, Int($0.distance)) }
    }

    /// Wall seconds of `body`, the median of `runs` runs.
    public static func median(runs: Int, _ body: () throws -> Void) rethrows -> Double {
        var times: [Double] = []
        for _ in 0..<max(1, runs) {
            let start = Progress.now()
            try body()
            times.append(Progress.now() - start)
        }
        return times.sorted()[times.count / 2]
    }

    /// Decoding only, as the hash needs it (JPEG at the same DCT scale, PNG in full), with no
    /// luma, digest or hash: the floor the hashing path is measured against.
    public static func decodeOnly(paths: [String]) throws -> Int {
        var failures = 0
        for path in paths {
            let file = try MappedFile(path: path)
            var options = DecodeOptions(pixels: true)
            options.minimumSide = 32
            if (try? ImageCodec.decode(file.bytes, options: options)) == nil { failures += 1 }
        }
        return failures
    }

    // MARK: - Synthetic grouping

    public struct GroupingFigures: Sendable {
        public let hashes: Int
        public let planted: Int
        public let pairs: Int
        public let kept: Int
        public let searchSeconds: Double
        public let clusterSeconds: Double
        public let plantedFound: Int
    }

    /// `count` hash pairs (pHash, dHash) with 32 bits set each, as imagehash's pHash always has;
    /// a quarter of them are near copies (0 to 8 bits flipped in each hash) of another.
    public static func syntheticGrouping(count: Int, rule: NearDuplicateRule, threads: Int, seed: UInt64 = 1) -> GroupingFigures {
        var random = SeededRandom(seed: seed)
        var hashes: [ImageHashes] = []
        hashes.reserveCapacity(count)
        var planted: [(Int32, Int32)] = []
        while hashes.count < count {
            if hashes.count > 100 && random.next() % 4 == 0 {
                let original = Int(random.next() % UInt64(hashes.count))
                let base = hashes[original]
                let copy = ImageHashes(
                    phash: random.flip(base.phash, bits: Int(random.next() % 9)),
                    dhash: random.flip(base.dhash, bits: Int(random.next() % 9)), ahash: 0)
                planted.append((Int32(original), Int32(hashes.count)))
                hashes.append(copy)
            } else {
                hashes.append(ImageHashes(phash: random.balanced(), dhash: random.balanced(), ahash: 0))
            }
        }
        let start = Progress.now()
        let pairs = rule.pairs(hashes, threads: threads)
        let searched = Progress.now()
        let order = (0..<Int32(count)).map { $0 }
        let assignments = LeaderClustering.assign(count: count, order: order, pairs: pairs)
        let clustered = Progress.now()
        let found = Set(pairs.map { Int64($0.0) << 32 | Int64($0.1) })
        let plantedFound = planted.filter { found.contains(Int64($0.0) << 32 | Int64($0.1)) }.count
        return GroupingFigures(
            hashes: count, planted: planted.count, pairs: pairs.count, kept: assignments.filter { $0 == nil }.count,
            searchSeconds: searched - start, clusterSeconds: clustered - searched, plantedFound: plantedFound)
    }

    static func rounded(_ value: Double, _ digits: Int) -> Double {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        return (value * scale).rounded() / scale
    }
}

/// The synthetic hashes' draws, from the project's seeded generator, so the set is the same every run.
extension SeededRandom {
    /// 32 of the 64 bits set, by a partial shuffle.
    mutating func balanced() -> UInt64 {
        var positions = Array(0..<64)
        var hash: UInt64 = 0
        for i in 0..<32 {
            let j = i + Int(next() % UInt64(64 - i))
            positions.swapAt(i, j)
            hash |= 1 << UInt64(positions[i])
        }
        return hash
    }

    mutating func flip(_ hash: UInt64, bits: Int) -> UInt64 {
        var flipped: UInt64 = 0
        while flipped.nonzeroBitCount < bits { flipped |= 1 << (next() % 64) }
        return hash ^ flipped
    }
}
