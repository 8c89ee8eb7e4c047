import Foundation

/// A response matrix drawn from known two-parameter logistic item parameters, for the tests and
/// the benchmark of the selection.
public struct SyntheticSelectionPool: Sendable {
    public let abilities: [Double]
    public let discrimination: [Double]
    public let difficulty: [Double]
    public let responses: ResponseMatrix
    public let candidates: [SelectionCandidate]

    /// `models` abilities from N(0, 1); each item's discrimination uniform in [0.2, 2.5] and
    /// difficulty from N(0, 1); categories of unequal sizes; small random embeddings.
    public init(models: Int, items: Int, seed: UInt64, embeddingDimension: Int = 8) {
        var random = SeededRandom(seed: seed)
        func uniform() -> Double { Double(random.next() >> 11) / Double(1 << 53) }
        func normal() -> Double { (-2 * log(max(uniform(), 1e-300))).squareRoot() * cos(2 * .pi * uniform()) }
        abilities = (0..<models).map { _ in normal() }
        discrimination = (0..<items).map { _ in 0.2 + 2.3 * uniform() }
        difficulty = (0..<items).map { _ in normal() }
        var matrix = ResponseMatrix(models: (0..<models).map { "model-\($0)" }, items: items)
        for model in 0..<models {
            for item in 0..<items {
                let p = 1 / (1 + exp(-discrimination[item] * (abilities[model] - difficulty[item])))
                matrix[model, item] = uniform() < p ? 1 : 0
            }
        }
        responses = matrix
        let categories = ["Illegal Activity", "Self-Harm", "Privacy", "Violent"]
        let shares = [0.4, 0.3, 0.2, 0.1]
        candidates = (0..<items).map { item in
            let u = uniform()
            var sum = 0.0, category = categories.last!
            for (name, share) in zip(categories, shares) {
                sum += share
                if u < sum { category = name; break }
            }
            var embedding = (0..<embeddingDimension).map { _ in Float(normal()) }
            let norm = embedding.reduce(0) { $0 + $1 * $1 }.squareRoot()
            embedding = embedding.map { $0 / norm }
            return SelectionCandidate(id: "pair-\(item)", category: category, image: "image-\(item / 2)", embedding: embedding)
        }
    }
}

