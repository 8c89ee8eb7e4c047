/// Groups near duplicates without chaining. Items are taken in keep order; an item within the
/// threshold of an item already kept joins the nearest such one (the earlier in keep order on a
/// tie) and is dropped; otherwise it is kept and leads a group of its own.
///
/// Why not connected components: with A~B and B~C but A far from C, components put all three in
/// one group and keep only A, dropping C although nothing near it survives. Here C is compared
/// with kept items only: A is far, so C is kept. Every dropped item is within the threshold of
/// the kept item it names, so each reject can state the one image it duplicates and the distance.
public enum LeaderClustering {
    public struct Assignment: Equatable, Sendable {
        public let leader: Int32
        public let distance: Int
    }

    /// For each item, nil when kept, else the kept item it duplicates. `order` lists every item
    /// once, best first; `pairs` are the near pairs, each once, with their distances.
    public static func assign(count: Int, order: [Int32], pairs: [(Int32, Int32, Int)]) -> [Assignment?] {
        precondition(order.count == count, "the keep order must list every item once")
        var rank = [Int32](repeating: 0, count: count)
        for (position, item) in order.enumerated() { rank[Int(item)] = Int32(position) }
        let graph = NeighbourGraph(count: count, pairs: pairs)
        var result = [Assignment?](repeating: nil, count: count)
        var kept = [Bool](repeating: false, count: count)
        for item in order {
            let i = Int(item)
            if let (leader, distance) = graph.nearest(of: i, where: { kept[$0] && rank[$0] < rank[i] }, rank: { Int(rank[$0]) }) {
                result[i] = Assignment(leader: Int32(leader), distance: distance)
            } else {
                kept[i] = true
            }
        }
        return result
    }
}

/// The near pairs of a set of items as compressed adjacency rows.
public struct NeighbourGraph {
    private var starts: [Int32]
    private var neighbours: [Int32]
    private var distances: [UInt8]

    public init(count: Int, pairs: [(Int32, Int32, Int)]) {
        starts = [Int32](repeating: 0, count: count + 1)
        for (a, b, _) in pairs {
            starts[Int(a) + 1] += 1
            starts[Int(b) + 1] += 1
        }
        for i in 0..<count { starts[i + 1] += starts[i] }
        var fill = starts
        neighbours = [Int32](repeating: 0, count: pairs.count * 2)
        distances = [UInt8](repeating: 0, count: pairs.count * 2)
        for (a, b, d) in pairs {
            for (from, to) in [(a, b), (b, a)] {
                let slot = Int(fill[Int(from)])
                neighbours[slot] = to
                distances[slot] = UInt8(clamping: d)
                fill[Int(from)] += 1
            }
        }
    }

    /// The nearest neighbour of `item` that passes `eligible`; on a tie the lowest `rank`
    /// (by default the lowest index).
    public func nearest(of item: Int, where eligible: (Int) -> Bool, rank: (Int) -> Int = { $0 }) -> (Int, Int)? {
        var best: (distance: Int, rank: Int, item: Int)?
        for slot in Int(starts[item])..<Int(starts[item + 1]) {
            let other = Int(neighbours[slot])
            guard eligible(other) else { continue }
            let candidate = (distance: Int(distances[slot]), rank: rank(other), item: other)
            if let current = best, (current.distance, current.rank) <= (candidate.distance, candidate.rank) { continue }
            best = candidate
        }
        return best.map { ($0.item, $0.distance) }
    }
}
