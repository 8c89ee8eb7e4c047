import LeaklessEmbedding
import Foundation
import LeaklessCore

/// How the target size is shared among categories.
public enum QuotaRule: Sendable, Equatable {
    /// Each category in proportion to its share of the pool (largest remainders).
    case proportional
    /// The same number for each category; what a small category cannot fill goes to the others.
    case equal
    /// A count for each category, summing to the target size.
    case table([String: Int])
}

/// How much each criterion counts when pairs are chosen.
public struct SelectionWeights: Sendable, Equatable {
    /// How well the pair tells the models apart (item information, or item-rest correlation).
    public var discrimination = 1.0
    /// Coverage of the pool's meaning (facility location over the pairs' embeddings).
    public var diversity = 0.5
    /// A pair whose image no chosen pair shows yet.
    public var images = 0.5
    /// The share of models whose reply with the image was unsafe.
    public var harmfulness = 0.25
    /// Safer with the image than without it (image-blind evaluation), where measured.
    public var visualDependence = 0.25

    public init() {}
}

/// How an item's statistics were estimated.
public enum ItemStatisticsMethod: String, Sendable, CaseIterable {
    case auto
    case irt
    case itemTotal = "item_total"

    /// Fewer models than this: `auto` takes item-rest correlations.
    public static let fewestModelsForIRT = 8
}

/// One candidate pair as the selection sees it.
public struct SelectionCandidate: Sendable {
    public let id: String
    public let category: String
    /// The image group: pairs with the same value show the same image.
    public let image: String
    /// Unit-length embedding of the query and description; empty when diversity is not used.
    public var embedding: [Float]

    public init(id: String, category: String, image: String, embedding: [Float] = []) {
        self.id = id
        self.category = category
        self.image = image
        self.embedding = embedding
    }
}

/// What the responses say of one item.
public struct ItemStatistics: Sendable {
    /// IRT difficulty b, or with item-rest statistics the share of unsafe replies.
    public var difficulty: Double
    /// IRT discrimination a, or the item-rest correlation.
    public var discrimination: Double
    /// What the selection ranks by: IRT information at the models' abilities, or the
    /// item-rest correlation (never below 0).
    public var separation: Double
    /// The share of models whose reply with the image was unsafe.
    public var harmfulness: Double
    /// Mean over models of (safe with the image) − (safe without it), where measured.
    public var visualDependence: Double?
    /// Models that labelled the item.
    public var labelled: Int

    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "difficulty": .double(difficulty.rounded(places: 4)), "discrimination": .double(discrimination.rounded(places: 4)),
            "separation": .double(separation.rounded(places: 4)), "harmfulness": .double(harmfulness.rounded(places: 4)),
            "models_labelled": .int(Int64(labelled)),
        ]
        if let visualDependence { fields["visual_dependence"] = .double(visualDependence.rounded(places: 4)) }
        return .object(fields)
    }
}

/// The selection's settings.
public struct SelectionSettings: Sendable {
    public var size: Int
    public var quota: QuotaRule = .proportional
    public var weights = SelectionWeights()
    public var method: ItemStatisticsMethod = .auto
    public var seed: Int64 = 1
    /// Pairs the diversity term measures coverage of (a seeded sample of the pool).
    public var diversitySample = 512
    /// Cosine at or above which a left-out pair counts as a near duplicate of a chosen one.
    public var nearDuplicate = 0.9

    public init(size: Int) { self.size = size }
}

/// A chosen pair: where it came in the greedy order and what each criterion gave it then.
public struct SelectedItem: Sendable {
    public let item: Int
    public let order: Int
    public let gains: [String: Double]
    public var total: Double { Self.sum(gains) }

    /// Added in the order of the names, so the same gains give the same bits in every process.
    static func sum(_ gains: [String: Double]) -> Double {
        gains.sorted { $0.key < $1.key }.reduce(0) { $0 + $1.value }
    }
}

/// A bad selection request: one line, nothing written.
public struct SelectionError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Chooses `size` of the candidates that best separate the models, stay harmful and stay
/// diverse: lazy greedy on a monotone submodular objective (a weighted sum of per-pair scores,
/// facility location over embeddings, and coverage of distinct images) under per-category
/// quotas (a partition matroid). Deterministic for a seed.
public struct SubsetSelection {
    public let candidates: [SelectionCandidate]
    public let responses: ResponseMatrix
    /// Responses without the image (image-blind), same models and items, where measured.
    public let blind: ResponseMatrix?
    public let settings: SelectionSettings

    public private(set) var method: ItemStatisticsMethod = .irt
    public private(set) var model: TwoParameterLogistic?
    public private(set) var statistics: [ItemStatistics] = []
    /// The largest separation of the pool, which scales each pair's.
    private var maximumSeparation = 0.0
    public private(set) var quotas: [String: Int] = [:]
    public private(set) var selected: [SelectedItem] = []
    /// Why each left-out candidate was left out: (reason, detail).
    public private(set) var leftOut: [Int: (reason: String, detail: String)] = [:]

    public init(candidates: [SelectionCandidate], responses: ResponseMatrix, blind: ResponseMatrix? = nil, settings: SelectionSettings) throws {
        precondition(candidates.count == responses.items)
        self.candidates = candidates
        self.responses = responses
        self.blind = blind
        self.settings = settings
        let eligible = (0..<candidates.count).filter { responses.labelled(item: $0) > 0 }
        guard settings.size >= 1 else { throw SelectionError("size must be at least 1") }
        guard settings.size <= eligible.count else {
            throw SelectionError("size \(settings.size) is above the \(eligible.count) evaluated pairs of the pool")
        }
        quotas = try Self.quotas(settings.quota, size: settings.size, categories: eligible.map { candidates[$0].category })
    }

    /// Item statistics, then the greedy choice.
    public mutating func run(progress: ((String) -> Void)? = nil) {
        estimate(progress: progress)
        choose()
    }

    // MARK: - Item statistics

    /// The item statistics (fitting the item response model, when used).
    public mutating func estimate(progress: ((String) -> Void)? = nil) {
        let models = responses.models.count
        method = settings.method == .auto ? (models >= ItemStatisticsMethod.fewestModelsForIRT ? .irt : .itemTotal) : settings.method
        var separation: [Double]
        var discrimination: [Double]
        var difficulty: [Double]
        if method == .irt {
            let fitted = TwoParameterLogistic.fit(responses) { progress?("item response model: EM step \($0)") }
            model = fitted
            discrimination = fitted.discrimination
            difficulty = fitted.difficulty
            separation = fitted.information(at: fitted.ability)
        } else {
            discrimination = ItemTotalStatistics.discrimination(responses)
            separation = discrimination.map { max(0, $0) }
            difficulty = (0..<responses.items).map { item in
                let seen = responses.labelled(item: item)
                let safe = (0..<models).reduce(0) { $0 + (responses[$1, item] == 1 ? 1 : 0) }
                return seen == 0 ? 0 : 1 - Double(safe) / Double(seen)
            }
        }
        statistics = (0..<responses.items).map { item in
            let seen = responses.labelled(item: item)
            let unsafe = (0..<models).reduce(0) { $0 + (responses[$1, item] == 0 ? 1 : 0) }
            var dependence: Double?
            if let blind {
                var sum = 0.0, count = 0
                for model in 0..<models where responses[model, item] != ResponseMatrix.missing && blind[model, item] != ResponseMatrix.missing {
                    sum += Double(responses[model, item]) - Double(blind[model, item])
                    count += 1
                }
                if count > 0 { dependence = sum / Double(count) }
            }
            return ItemStatistics(
                difficulty: difficulty[item], discrimination: discrimination[item], separation: separation[item],
                harmfulness: seen == 0 ? 0 : Double(unsafe) / Double(seen), visualDependence: dependence, labelled: seen)
        }
        maximumSeparation = statistics.map(\.separation).max() ?? 0
    }

    // MARK: - Quotas

    static func quotas(_ rule: QuotaRule, size: Int, categories: [String]) throws -> [String: Int] {
        var available: [String: Int] = [:]
        for category in categories { available[category, default: 0] += 1 }
        let names = available.keys.sorted()
        switch rule {
        case .table(let table):
            for name in table.keys.sorted() where available[name] == nil {
                throw SelectionError("the quota table names '\(name)', which no evaluated pair of the pool has (categories: \(names.joined(separator: ", ")))")
            }
            let total = table.values.reduce(0, +)
            guard total == size else { throw SelectionError("the quota table asks for \(total) pairs, not the size \(size)") }
            for name in table.keys.sorted() where table[name]! > available[name]! {
                throw SelectionError("the quota table asks for \(table[name]!) pairs of '\(name)', which has \(available[name]!) evaluated pairs")
            }
            return Dictionary(uniqueKeysWithValues: names.map { ($0, table[$0] ?? 0) })
        case .proportional:
            let total = Double(categories.count)
            var quota: [String: Int] = [:]
            var remainders: [(String, Double)] = []
            for name in names {
                let exact = Double(size) * Double(available[name]!) / total
                quota[name] = Int(exact.rounded(.down))
                remainders.append((name, exact - exact.rounded(.down)))
            }
            var missing = size - quota.values.reduce(0, +)
            for (name, _) in remainders.sorted(by: { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }) where missing > 0 {
                quota[name]! += 1
                missing -= 1
            }
            return quota
        case .equal:
            // Water filling: each category gets the same share, capped by what it has.
            var quota = Dictionary(uniqueKeysWithValues: names.map { ($0, 0) })
            var left = size
            while left > 0 {
                let open = names.filter { quota[$0]! < available[$0]! }
                let share = max(1, left / open.count)
                for name in open where left > 0 {
                    let step = min(share, available[name]! - quota[name]!, left)
                    quota[name]! += step
                    left -= step
                }
            }
            return quota
        }
    }

    // MARK: - Greedy choice

    /// The per-pair part of the objective besides discrimination.
    func modularGains(_ item: Int) -> [String: Double] {
        let stats = statistics[item], weights = settings.weights
        var gains = ["harmfulness": weights.harmfulness * stats.harmfulness]
        if let dependence = stats.visualDependence { gains["visual_dependence"] = weights.visualDependence * max(0, dependence) }
        return gains
    }

    /// The greedy choice, on the statistics `estimate` made.
    public mutating func choose() {
        let count = candidates.count
        let weights = settings.weights
        let modular = (0..<count).map { SelectedItem.sum(modularGains($0)) }
        let eligible = (0..<count).filter { statistics[$0].labelled > 0 }
        for item in 0..<count where statistics[item].labelled == 0 {
            leftOut[item] = ("not-evaluated", "no model's reply to this pair was labelled")
        }
        // Facility location over a seeded sample of the pool: each sampled pair is covered by
        // its most similar chosen pair.
        let diversity = Coverage(candidates: candidates, eligible: eligible, sample: settings.diversitySample, seed: settings.seed,
                                 enabled: weights.diversity > 0)
        let diversityScale = weights.diversity * Double(settings.size)
        var covered = [UInt8](repeating: 0, count: diversity.references)
        // Discrimination: with an item response model, how far each chosen pair sets apart the
        // neighbouring models, with diminishing returns per neighbouring pair, so the subset
        // separates all of them and not only the middle; otherwise each pair's separation.
        var neighbours = model.map { NeighbourSeparation(model: $0, eligible: eligible, size: settings.size) }
        func discrimination(_ item: Int) -> Double {
            if let neighbours { return weights.discrimination * neighbours.gain(item) }
            return weights.discrimination * (maximumSeparation > 0 ? statistics[item].separation / maximumSeparation : 0)
        }
        var imagesShown = Set<String>()
        var taken = [String: Int]()
        func gains(_ item: Int) -> [String: Double] {
            var parts = modularGains(item)
            parts["discrimination"] = discrimination(item)
            if diversity.references > 0 { parts["diversity"] = diversityScale * diversity.gain(item, covered: covered) }
            if weights.images > 0 { parts["images"] = imagesShown.contains(candidates[item].image) ? 0 : weights.images }
            return parts
        }
        func total(_ item: Int) -> Double {
            modular[item] + discrimination(item) + (diversity.references > 0 ? diversityScale * diversity.gain(item, covered: covered) : 0)
                + (weights.images > 0 && !imagesShown.contains(candidates[item].image) ? weights.images : 0)
        }
        var heap = MaxHeap()
        for item in eligible {
            var random = SeededRandom(seed: settings.seed, salt: candidates[item].id)
            heap.push(.init(bound: total(item), tiebreak: random.next(), item: item))
        }
        var order = 0
        while selected.count < settings.size, var top = heap.pop() {
            let category = candidates[top.item].category
            if taken[category, default: 0] >= quotas[category, default: 0] { continue }
            let current = total(top.item)
            if let next = heap.peek, current < next.bound - 1e-12 {
                top.bound = current
                heap.push(top)
                continue
            }
            selected.append(SelectedItem(item: top.item, order: order, gains: gains(top.item)))
            order += 1
            taken[category, default: 0] += 1
            imagesShown.insert(candidates[top.item].image)
            diversity.cover(top.item, covered: &covered)
            neighbours?.cover(top.item)
        }
        // Why each evaluated pair that was not chosen was left out, by the first criterion
        // that explains it.
        let chosen = Set(selected.map(\.item))
        var lowestSeparation: [String: Double] = [:]
        for entry in selected {
            let category = candidates[entry.item].category
            lowestSeparation[category] = min(lowestSeparation[category] ?? .infinity, statistics[entry.item].separation)
        }
        var byImage: [String: Int] = [:]
        for entry in selected where byImage[candidates[entry.item].image] == nil { byImage[candidates[entry.item].image] = entry.item }
        let unchosen = eligible.filter { !chosen.contains($0) }
        let nearestChosen = diversity.nearest(unchosen, among: selected.map(\.item))
        for (position, item) in unchosen.enumerated() {
            let category = candidates[item].category
            if quotas[category, default: 0] == 0 {
                leftOut[item] = ("quota", "its category '\(category)' has a quota of 0")
            } else if weights.images > 0, let shown = byImage[candidates[item].image] {
                leftOut[item] = ("same-image", "its image is shown by chosen pair \(candidates[shown].id)")
            } else if let (nearest, similarity) = nearestChosen[position], similarity >= settings.nearDuplicate {
                leftOut[item] = ("near-duplicate", "cosine \(String(format1: similarity, digits: 3)) to chosen pair \(candidates[nearest].id)")
            } else if statistics[item].separation < (lowestSeparation[category] ?? 0) {
                leftOut[item] = ("low-discrimination", "separation \(String(format1: statistics[item].separation, digits: 3)) below the lowest chosen in '\(category)' (\(String(format1: lowestSeparation[category] ?? 0, digits: 3)))")
            } else {
                leftOut[item] = ("quota-full", "'\(category)' reached its quota of \(quotas[category, default: 0]) with pairs of higher gain")
            }
        }
    }
}

/// The discrimination term under an item response model: the models sorted by ability, each
/// pair's expected gap in safety between neighbouring models, P(θ_k+1) − P(θ_k); the coverage
/// of neighbours k is the sum of the chosen pairs' gaps, counted as τ log(1 + c_k / τ) so that a
/// gap adds less where neighbours are already well apart. Scaled so the best first pair gains 1.
struct NeighbourSeparation {
    let neighbours: Int
    private let gaps: [Float]
    private var coverage: [Double]
    private let saturation: Double
    private var scale = 1.0

    init(model: TwoParameterLogistic, eligible: [Int], size: Int) {
        let abilities = model.ability.sorted()
        neighbours = max(0, abilities.count - 1)
        let items = model.discrimination.count
        var gaps = [Float](repeating: 0, count: items * neighbours)
        var total = 0.0
        for item in 0..<items {
            var previous = model.probability(item: item, ability: abilities.first ?? 0)
            for k in 0..<neighbours {
                let next = model.probability(item: item, ability: abilities[k + 1])
                gaps[item * neighbours + k] = Float(max(0, next - previous))
                previous = next
            }
        }
        for item in eligible { for k in 0..<neighbours { total += Double(gaps[item * neighbours + k]) } }
        self.gaps = gaps
        coverage = [Double](repeating: 0, count: neighbours)
        // Where returns diminish: what a random subset of the size would give each neighbour pair.
        saturation = max(1e-9, total / Double(max(1, eligible.count)) * Double(size) / Double(max(1, neighbours)))
        let best = eligible.map { gain($0) }.max() ?? 0
        scale = best > 0 ? 1 / best : 1
    }

    func gain(_ item: Int) -> Double {
        var sum = 0.0
        let base = item * neighbours
        for k in 0..<neighbours {
            let gap = Double(gaps[base + k])
            if gap > 0 { sum += saturation * (log1p((coverage[k] + gap) / saturation) - log1p(coverage[k] / saturation)) }
        }
        return sum * scale
    }

    mutating func cover(_ item: Int) {
        let base = item * neighbours
        for k in 0..<neighbours { coverage[k] += Double(gaps[base + k]) }
    }
}

/// The diversity term: each of a seeded sample of the pool's pairs is covered by the chosen
/// pair most similar to it (cosine, below 0 counted as 0, quantised to 1/255); a pair's gain is
/// how much it raises that coverage, averaged over the sample.
struct Coverage {
    let references: Int
    /// candidates × references similarities, quantised; empty when disabled.
    private let similarity: [UInt8]
    private let embeddings: [[Float]]

    init(candidates: [SelectionCandidate], eligible: [Int], sample: Int, seed: Int64, enabled: Bool) {
        let embeddings = candidates.map(\.embedding)
        self.embeddings = embeddings
        let dimension = candidates.first?.embedding.count ?? 0
        guard enabled, dimension > 0, !eligible.isEmpty, sample > 0 else {
            references = 0
            similarity = []
            return
        }
        // The sample: the eligible pairs ordered by a seeded hash of their ids.
        var keyed: [(key: UInt64, item: Int)] = []
        for item in eligible {
            var random = SeededRandom(seed: seed, salt: "coverage:" + candidates[item].id)
            keyed.append((random.next(), item))
        }
        keyed.sort { (left: (key: UInt64, item: Int), right: (key: UInt64, item: Int)) -> Bool in
            left.key != right.key ? left.key < right.key : left.item < right.item
        }
        let ordered: [Int] = keyed.prefix(sample).map { $0.item }
        let references = ordered.count
        self.references = references
        let referenceMatrix = Self.packed(ordered, from: embeddings, dimension: dimension)
        var quantised = [UInt8](repeating: 0, count: candidates.count * references)
        Self.similarities(of: Array(candidates.indices), in: embeddings, to: referenceMatrix, count: references, dimension: dimension) { start, rows, products in
            for row in 0..<rows {
                for column in 0..<references {
                    let value = max(0, min(1, products[row * references + column]))
                    quantised[(start + row) * references + column] = UInt8((value * 255).rounded())
                }
            }
        }
        similarity = quantised
    }

    /// The embeddings of `items` as the rows of one matrix (a missing embedding as zeros).
    static func packed(_ items: [Int], from embeddings: [[Float]], dimension: Int) -> [Float] {
        var matrix = [Float](repeating: 0, count: items.count * dimension)
        for (row, item) in items.enumerated() where embeddings[item].count == dimension {
            for k in 0..<dimension { matrix[row * dimension + k] = embeddings[item][k] }
        }
        return matrix
    }

    /// Cosines of `items` against the `count` rows of `matrix`, a block of items at a time:
    /// `visit(first position, rows in the block, products rows x count)`.
    static func similarities(of items: [Int], in embeddings: [[Float]], to matrix: [Float], count: Int, dimension: Int,
                             _ visit: (Int, Int, [Float]) -> Void) {
        let block = 1024
        var start = 0
        while start < items.count {
            let end = min(start + block, items.count)
            let rows = packed(Array(items[start..<end]), from: embeddings, dimension: dimension)
            visit(start, end - start, Matrix.multiplyByTransposed(rows, rows: end - start, matrix, columns: count, inner: dimension))
            start = end
        }
    }

    func gain(_ item: Int, covered: [UInt8]) -> Double {
        var sum = 0
        let base = item * references
        for r in 0..<references {
            let value = Int(similarity[base + r]), current = Int(covered[r])
            if value > current { sum += value - current }
        }
        return Double(sum) / 255 / Double(references)
    }

    func cover(_ item: Int, covered: inout [UInt8]) {
        guard references > 0 else { return }
        let base = item * references
        for r in 0..<references where similarity[base + r] > covered[r] { covered[r] = similarity[base + r] }
    }

    /// For each of `items`, the chosen pair nearest it by cosine and that cosine (nil when
    /// there are no embeddings or nothing was chosen); one matrix product a block of items.
    func nearest(_ items: [Int], among chosen: [Int]) -> [(Int, Double)?] {
        let dimension = embeddings.first?.count ?? 0
        guard references > 0, dimension > 0, !chosen.isEmpty else { return items.map { _ in nil } }
        let chosenMatrix = Self.packed(chosen, from: embeddings, dimension: dimension)
        var result: [(Int, Double)?] = []
        result.reserveCapacity(items.count)
        Self.similarities(of: items, in: embeddings, to: chosenMatrix, count: chosen.count, dimension: dimension) { _, rows, products in
            for row in 0..<rows {
                var best = 0
                for column in 1..<chosen.count where products[row * chosen.count + column] > products[row * chosen.count + best] { best = column }
                result.append((chosen[best], Double(products[row * chosen.count + best])))
            }
        }
        return result
    }
}

/// A binary max-heap of greedy candidates by their gain's upper bound (ties: seeded order).
struct MaxHeap {
    struct Entry {
        var bound: Double
        let tiebreak: UInt64
        let item: Int

        func above(_ other: Entry) -> Bool {
            bound != other.bound ? bound > other.bound : tiebreak != other.tiebreak ? tiebreak < other.tiebreak : item < other.item
        }
    }

    private var entries: [Entry] = []

    var peek: Entry? { entries.first }

    mutating func push(_ entry: Entry) {
        entries.append(entry)
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].above(entries[parent]) else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Entry? {
        guard !entries.isEmpty else { return nil }
        entries.swapAt(0, entries.count - 1)
        let top = entries.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var largest = parent
            if left < entries.count && entries[left].above(entries[largest]) { largest = left }
            if right < entries.count && entries[right].above(entries[largest]) { largest = right }
            if largest == parent { break }
            entries.swapAt(parent, largest)
            parent = largest
        }
        return top
    }
}
