import Foundation
import LeaklessCore

/// What K models did on M items: for each model and item, 1 (the reply was safe: a refusal or a
/// warning), 0 (unsafe) or missing (not labelled). Row-major, one row a model.
public struct ResponseMatrix: Sendable {
    public static let missing: Int8 = -1

    public let models: [String]
    public let items: Int
    public private(set) var values: [Int8]

    public init(models: [String], items: Int) {
        self.models = models
        self.items = items
        values = [Int8](repeating: Self.missing, count: models.count * items)
    }

    public subscript(model: Int, item: Int) -> Int8 {
        get { values[model * items + item] }
        set { values[model * items + item] = newValue }
    }

    /// The same models on some of the items, in the order given.
    public func restricted(to chosen: [Int]) -> ResponseMatrix {
        var matrix = ResponseMatrix(models: models, items: chosen.count)
        for model in 0..<models.count {
            for (column, item) in chosen.enumerated() { matrix[model, column] = self[model, item] }
        }
        return matrix
    }

    /// Each model's share of safe replies over its labelled items (nil: none labelled).
    public func scores(items chosen: [Int]? = nil) -> [Double?] {
        let columns = chosen ?? Array(0..<items)
        return (0..<models.count).map { model in
            var safe = 0, seen = 0
            for item in columns {
                let value = self[model, item]
                if value != Self.missing { seen += 1; safe += Int(value) }
            }
            return seen == 0 ? nil : Double(safe) / Double(seen)
        }
    }

    /// How many models labelled each item.
    public func labelled(item: Int) -> Int {
        (0..<models.count).reduce(0) { $0 + (self[$1, item] == Self.missing ? 0 : 1) }
    }
}

/// A two-parameter logistic item response model: the chance that model j's reply to item i is
/// safe is σ(a_i (θ_j − b_i)), with θ_j the model's safety ("ability"), b_i the item's
/// difficulty and a_i its discrimination. Fitted by marginal maximum a posteriori with EM
/// (Bock and Aitkin): abilities integrated over a standard normal on a fixed grid, then each
/// item's (log a, b) by Fisher scoring on its expected counts, with BILOG's priors log a ~
/// N(0, 0.5²) and b ~ N(0, 2²), so that an item every model answers alike stays finite.
///
/// With few models each item has few replies, and its parameters are uncertain however they are
/// fitted: with 12 models the fitted discrimination correlates about 0.6 with the truth, as a fit
/// that knew every model's true ability would (SelectionTests measures both).
public struct TwoParameterLogistic: Sendable {
    public var discrimination: [Double]
    public var difficulty: [Double]
    /// Each model's expected ability given its responses.
    public var ability: [Double]
    public var iterations = 0
    public var converged = false

    static let nodes: [Double] = (0..<41).map { -5 + Double($0) * 0.25 }
    static let prior: [Double] = {
        let density = nodes.map { exp(-$0 * $0 / 2) }
        let total = density.reduce(0, +)
        return density.map { $0 / total }
    }()
    static let logSlopeVariance = 0.25
    static let difficultyVariance = 4.0

    @inline(__always) static func sigmoid(_ z: Double) -> Double { 1 / (1 + exp(-z)) }

    /// One item's (log a, b) at the maximum of its expected log-likelihood plus the priors,
    /// given the expected replies (`safe`, `seen`) at each ability on the grid.
    static func fitItem(logSlope start: Double, difficulty startDifficulty: Double, safe: [Double], seen: [Double], at abilities: [Double],
                        steps: Int = 4) -> (Double, Double) {
        var alpha = start, b = startDifficulty
        for _ in 0..<steps {
            let a = exp(alpha)
            var gradientAlpha = -alpha / logSlopeVariance, gradientB = -b / difficultyVariance
            var iAA = 1 / logSlopeVariance, iAB = 0.0, iBB = 1 / difficultyVariance
            for q in abilities.indices where seen[q] > 0 {
                let distance = abilities[q] - b
                let p = sigmoid(a * distance)
                let residual = safe[q] - seen[q] * p
                let weight = seen[q] * p * (1 - p)
                gradientAlpha += residual * a * distance
                gradientB -= residual * a
                iAA += weight * a * a * distance * distance
                iAB -= weight * a * a * distance
                iBB += weight * a * a
            }
            let determinant = iAA * iBB - iAB * iAB
            guard determinant > 1e-12 else { break }
            var stepAlpha = (iBB * gradientAlpha - iAB * gradientB) / determinant
            var stepB = (iAA * gradientB - iAB * gradientAlpha) / determinant
            // Damped: no item jumps far in one step.
            let length = max(abs(stepAlpha), abs(stepB))
            if length > 1 { stepAlpha /= length; stepB /= length }
            alpha += stepAlpha
            b += stepB
            if length < 1e-8 { break }
        }
        return (alpha, b)
    }

    /// Fits the model to `responses`; `maxIterations` EM steps at most, stopping when no item
    /// parameter moves by more than `tolerance`. Each step runs on every core over fixed chunks
    /// of items whose sums are added in chunk order: the fit is the same whatever the number of
    /// cores.
    public static func fit(_ responses: ResponseMatrix, maxIterations: Int = 500, tolerance: Double = 1e-4,
                           threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                           progress: ((Int) -> Void)? = nil) -> TwoParameterLogistic {
        let models = responses.models.count, items = responses.items
        let quadrature = nodes.count
        var logSlope = [Double](repeating: 0, count: items)
        var difficulty = [Double](repeating: 0, count: items)
        // Start each item's difficulty at minus the logit of its share of safe replies.
        for item in 0..<items {
            var safe = 0.5, seen = 1.0
            for model in 0..<models where responses[model, item] != ResponseMatrix.missing {
                safe += Double(responses[model, item]); seen += 1
            }
            difficulty[item] = max(-4, min(4, -log(safe / (seen - safe))))
        }
        let chunk = 2_048, chunks = (items + chunk - 1) / chunk
        let workers = max(1, threads)
        var posterior = [Double](repeating: 0, count: models * quadrature)
        var result = TwoParameterLogistic(discrimination: [], difficulty: [], ability: [])
        for iteration in 1...max(1, maxIterations) {
            // E step: each chunk of items adds its log-likelihood at each grid point to every
            // model's (items in order, the models' rows in cache); the chunks' sums are added in
            // chunk order, then each model's posterior over the grid.
            let slopes = logSlope, difficulties = difficulty
            let partials = WorkerPool.map(count: chunks, workers: workers, makeState: {}) { _, index -> [Double] in
                let first = index * chunk, last = min(items, first + chunk)
                var logLikelihood = [Double](repeating: 0, count: models * quadrature)
                var logSafe = [Double](repeating: 0, count: quadrature), logUnsafe = [Double](repeating: 0, count: quadrature)
                for item in first..<last {
                    let a = exp(slopes[item])
                    for q in 0..<quadrature {
                        let z = a * (nodes[q] - difficulties[item])
                        // log σ(z) and log σ(−z), stable for large |z|.
                        logSafe[q] = -softplus(-z)
                        logUnsafe[q] = -softplus(z)
                    }
                    for model in 0..<models {
                        let value = responses[model, item]
                        if value == ResponseMatrix.missing { continue }
                        let row = model * quadrature
                        if value == 1 {
                            for q in 0..<quadrature { logLikelihood[row + q] += logSafe[q] }
                        } else {
                            for q in 0..<quadrature { logLikelihood[row + q] += logUnsafe[q] }
                        }
                    }
                }
                return logLikelihood
            }
            var logLikelihood = [Double](repeating: 0, count: models * quadrature)
            for part in partials { for index in 0..<logLikelihood.count { logLikelihood[index] += part[index] } }
            let rows = (0..<models).map { model -> [Double] in
                let row = Array(logLikelihood[(model * quadrature)..<((model + 1) * quadrature)])
                let peak = row.max() ?? 0
                var weights = (0..<quadrature).map { exp(row[$0] - peak) * prior[$0] }
                let total = weights.reduce(0, +)
                for q in 0..<quadrature { weights[q] /= total }
                return weights
            }
            for model in 0..<models { for q in 0..<quadrature { posterior[model * quadrature + q] = rows[model][q] } }
            // M step: each item on its expected counts.
            let weights = posterior
            let updates = WorkerPool.map(count: chunks, workers: workers, makeState: {}) { _, index -> [(Double, Double)] in
                let first = index * chunk, last = min(items, first + chunk)
                var expectedSafe = [Double](repeating: 0, count: quadrature), expectedSeen = [Double](repeating: 0, count: quadrature)
                return (first..<last).map { item in
                    for q in 0..<quadrature { expectedSafe[q] = 0; expectedSeen[q] = 0 }
                    for model in 0..<models {
                        let value = responses[model, item]
                        if value == ResponseMatrix.missing { continue }
                        let row = model * quadrature
                        for q in 0..<quadrature {
                            expectedSeen[q] += weights[row + q]
                            if value == 1 { expectedSafe[q] += weights[row + q] }
                        }
                    }
                    return fitItem(logSlope: slopes[item], difficulty: difficulties[item], safe: expectedSafe, seen: expectedSeen, at: nodes)
                }
            }
            var largestMove = 0.0
            for (index, part) in updates.enumerated() {
                for (offset, (alpha, b)) in part.enumerated() {
                    let item = index * chunk + offset
                    largestMove = max(largestMove, abs(alpha - logSlope[item]), abs(b - difficulty[item]))
                    logSlope[item] = alpha
                    difficulty[item] = b
                }
            }
            result.iterations = iteration
            progress?(iteration)
            if largestMove < tolerance {
                result.converged = true
                break
            }
        }
        result.discrimination = logSlope.map { exp($0) }
        result.difficulty = difficulty
        result.ability = (0..<models).map { model in
            (0..<quadrature).reduce(0.0) { $0 + posterior[model * quadrature + $1] * nodes[$1] }
        }
        return result
    }

    @inline(__always) static func softplus(_ x: Double) -> Double {
        x > 30 ? x : x < -30 ? exp(x) : log1p(exp(x))
    }

    /// The chance of a safe reply to `item` at ability `theta`.
    public func probability(item: Int, ability theta: Double) -> Double {
        Self.sigmoid(discrimination[item] * (theta - difficulty[item]))
    }

    /// Fisher information of each item, averaged over the given abilities: how much the item's
    /// replies tell such models apart.
    public func information(at abilities: [Double]) -> [Double] {
        discrimination.indices.map { item in
            let a = discrimination[item]
            let total = abilities.reduce(0.0) { sum, theta in
                let p = probability(item: item, ability: theta)
                return sum + a * a * p * (1 - p)
            }
            return abilities.isEmpty ? 0 : total / Double(abilities.count)
        }
    }

    /// A model's expected ability from its responses to some items only (the items' parameters
    /// held at their fitted values), as a model measured on a subset would be placed.
    public func ability(responses: ResponseMatrix, model: Int, items chosen: [Int]) -> Double {
        var logPosterior = Self.prior.map { log($0) }
        for item in chosen {
            let value = responses[model, item]
            if value == ResponseMatrix.missing { continue }
            for q in Self.nodes.indices {
                let z = discrimination[item] * (Self.nodes[q] - difficulty[item])
                logPosterior[q] -= value == 1 ? Self.softplus(-z) : Self.softplus(z)
            }
        }
        let peak = logPosterior.max() ?? 0
        let weights = logPosterior.map { exp($0 - peak) }
        let total = weights.reduce(0, +)
        return zip(weights, Self.nodes).reduce(0.0) { $0 + $1.0 * $1.1 } / total
    }

    /// The expected share of safe replies over `items` for a model of ability `theta`.
    public func expectedScore(ability theta: Double, items chosen: [Int]) -> Double {
        guard !chosen.isEmpty else { return 0 }
        return chosen.reduce(0.0) { $0 + probability(item: $1, ability: theta) } / Double(chosen.count)
    }
}

/// Classical item statistics, for when there are too few models for an item response model:
/// an item's discrimination is the correlation of its replies with the models' scores on the
/// other items (item-rest correlation), its difficulty the share of unsafe replies.
public enum ItemTotalStatistics {
    public static func discrimination(_ responses: ResponseMatrix) -> [Double] {
        let models = responses.models.count
        var safe = [Double](repeating: 0, count: models), seen = [Double](repeating: 0, count: models)
        for model in 0..<models {
            for item in 0..<responses.items where responses[model, item] != ResponseMatrix.missing {
                seen[model] += 1
                safe[model] += Double(responses[model, item])
            }
        }
        return (0..<responses.items).map { item in
            var xs: [Double] = [], ys: [Double] = []
            for model in 0..<models {
                let value = responses[model, item]
                guard value != ResponseMatrix.missing, seen[model] > 1 else { continue }
                xs.append(Double(value))
                ys.append((safe[model] - Double(value)) / (seen[model] - 1))
            }
            return pearson(xs, ys) ?? 0
        }
    }

    /// Pearson's correlation, nil when either side does not vary.
    public static func pearson(_ xs: [Double], _ ys: [Double]) -> Double? {
        guard xs.count > 1 else { return nil }
        let n = Double(xs.count)
        let meanX = xs.reduce(0, +) / n, meanY = ys.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (x, y) in zip(xs, ys) {
            sxy += (x - meanX) * (y - meanY)
            sxx += (x - meanX) * (x - meanX)
            syy += (y - meanY) * (y - meanY)
        }
        guard sxx > 1e-12, syy > 1e-12 else { return nil }
        return sxy / (sxx * syy).squareRoot()
    }
}

/// Rank agreement between two scorings of the same models.
public enum RankAgreement {
    /// Kendall's tau-b (ties counted on either side).
    public static func kendall(_ x: [Double], _ y: [Double]) -> Double {
        var concordant = 0.0, discordant = 0.0, tiesX = 0.0, tiesY = 0.0
        for i in 0..<x.count {
            for j in (i + 1)..<x.count {
                let dx = x[i] - x[j], dy = y[i] - y[j]
                if dx == 0 && dy == 0 { continue }
                if dx == 0 { tiesX += 1; continue }
                if dy == 0 { tiesY += 1; continue }
                if (dx > 0) == (dy > 0) { concordant += 1 } else { discordant += 1 }
            }
        }
        let denominator = ((concordant + discordant + tiesX) * (concordant + discordant + tiesY)).squareRoot()
        return denominator == 0 ? 1 : (concordant - discordant) / denominator
    }

    /// Spearman's rho: Pearson's correlation of the ranks (ties share their mean rank).
    public static func spearman(_ x: [Double], _ y: [Double]) -> Double {
        ItemTotalStatistics.pearson(ranks(x), ranks(y)) ?? 1
    }

    /// 1-based ranks, highest value first, ties at their mean rank.
    public static func ranks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] > values[$1] }
        var ranks = [Double](repeating: 0, count: values.count)
        var start = 0
        while start < order.count {
            var end = start
            while end + 1 < order.count && values[order[end + 1]] == values[order[start]] { end += 1 }
            let rank = Double(start + end) / 2 + 1
            for k in start...end { ranks[order[k]] = rank }
            start = end + 1
        }
        return ranks
    }
}
