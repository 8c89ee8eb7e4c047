import LeaklessCore

/// The review store replayed: for each pair and reviewer, the decisions still standing (undo
/// takes one back), the latest of which is the reviewer's current decision.
public struct ReviewState: Sendable {
    /// pair → reviewer → standing decisions with their ids, oldest first.
    private var standing: [String: [String: [(id: String, decision: ReviewDecision)]]] = [:]
    /// Every reviewer's standing decisions in the order made, for undo.
    private var history: [String: [(id: String, pair: String)]] = [:]
    public private(set) var count = 0

    public init(_ decisions: [ReviewDecision]) {
        for decision in decisions { apply(decision) }
    }

    public mutating func apply(_ decision: ReviewDecision) {
        count += 1
        let id = decision.id
        if decision.action == .undo {
            // An undo of a decision no longer standing (two tabs undoing at once) changes nothing.
            guard let index = history[decision.reviewer]?.lastIndex(where: { $0.id == decision.undoes }) else { return }
            let pair = history[decision.reviewer]![index].pair
            history[decision.reviewer]!.remove(at: index)
            standing[pair]?[decision.reviewer]?.removeAll { $0.id == decision.undoes }
            if standing[pair]?[decision.reviewer]?.isEmpty == true { standing[pair]![decision.reviewer] = nil }
            return
        }
        standing[decision.pair, default: [:]][decision.reviewer, default: []].append((id, decision))
        history[decision.reviewer, default: []].append((id, decision.pair))
    }

    /// Each reviewer's current decision on a pair.
    public func current(_ pair: String) -> [String: ReviewDecision] {
        (standing[pair] ?? [:]).compactMapValues { $0.last?.decision }
    }

    public func current(_ pair: String, reviewer: String) -> ReviewDecision? { standing[pair]?[reviewer]?.last?.decision }

    /// The id of the reviewer's latest standing decision and its pair: what `undo` takes back.
    public func lastStanding(reviewer: String) -> (id: String, pair: String)? { history[reviewer]?.last }

    public var reviewedPairs: [String] { standing.filter { !$0.value.isEmpty }.keys.sorted() }

    public var reviewers: [String] {
        Set(standing.values.flatMap { $0.keys }).sorted()
    }

    /// The query an edit gave the pair: the latest standing edit of any reviewer, by time.
    public func editedQuery(_ pair: String) -> ReviewDecision? {
        current(pair).values.filter { $0.action == .edit }.max { ($0.time, $0.reviewer) < ($1.time, $1.reviewer) }
    }

    /// Agreement between reviewers on accept (an edit accepts) against reject.
    public func agreement(over pairs: Set<String>? = nil) -> ReviewAgreement {
        var ratings: [[String: Bool]] = []
        for (pair, byReviewer) in standing where pairs?.contains(pair) ?? true {
            let verdicts = byReviewer.compactMapValues { $0.last?.decision.accepts }
            if verdicts.count >= 2 { ratings.append(verdicts) }
        }
        return ReviewAgreement(ratings: ratings, reviewers: reviewers)
    }
}

/// Chance-corrected agreement on accept/reject: Cohen's kappa when two reviewers rated the pairs,
/// Fleiss' kappa when more did (pairs with at least two ratings each; the number of ratings may
/// differ from pair to pair).
public struct ReviewAgreement: Sendable, Equatable {
    public enum Measure: String, Sendable { case cohen = "Cohen's kappa", fleiss = "Fleiss' kappa" }

    /// nil when fewer than two reviewers rated a pair in common.
    public let measure: Measure?
    /// nil when it is undefined (every rating the same: no variation to agree on).
    public let kappa: Double?
    /// The share of rating pairs that agree.
    public let observed: Double?
    /// Pairs rated by two reviewers or more.
    public let pairs: Int
    public let raters: [String]

    public init(measure: Measure?, kappa: Double?, observed: Double?, pairs: Int, raters: [String]) {
        self.measure = measure
        self.kappa = kappa
        self.observed = observed
        self.pairs = pairs
        self.raters = raters
    }

    /// - Parameter ratings: per pair, each reviewer's rating (true: accept).
    public init(ratings: [[String: Bool]], reviewers: [String]) {
        let raters = Set(ratings.flatMap { $0.keys }).sorted()
        pairs = ratings.count
        self.raters = raters
        guard !ratings.isEmpty else {
            measure = nil; kappa = nil; observed = nil
            return
        }
        if raters.count == 2 {
            measure = .cohen
            let a = raters[0], b = raters[1]
            let n = Double(ratings.count)
            var agree = 0.0, acceptA = 0.0, acceptB = 0.0
            for rating in ratings {
                let x = rating[a]!, y = rating[b]!
                if x == y { agree += 1 }
                if x { acceptA += 1 }
                if y { acceptB += 1 }
            }
            let po = agree / n
            let pe = (acceptA / n) * (acceptB / n) + (1 - acceptA / n) * (1 - acceptB / n)
            observed = po
            kappa = pe >= 1 ? nil : (po - pe) / (1 - pe)
        } else {
            measure = .fleiss
            var sumP = 0.0, totalRatings = 0.0, totalAccepts = 0.0
            for rating in ratings {
                let n = Double(rating.count)
                let accepts = Double(rating.values.filter { $0 }.count)
                let rejects = n - accepts
                sumP += (accepts * (accepts - 1) + rejects * (rejects - 1)) / (n * (n - 1))
                totalRatings += n
                totalAccepts += accepts
            }
            let pBar = sumP / Double(ratings.count)
            let pAccept = totalAccepts / totalRatings
            let pe = pAccept * pAccept + (1 - pAccept) * (1 - pAccept)
            observed = pBar
            kappa = pe >= 1 ? nil : (pBar - pe) / (1 - pe)
        }
    }

    /// "Cohen's kappa 0.62 over 40 pairs (alice, bob)", or why there is none.
    public var summary: String {
        guard let measure else { return "no pair has been reviewed by two reviewers yet" }
        let value = kappa.map { String(format1: $0, digits: 2) } ?? "undefined (every decision the same)"
        return "\(measure.rawValue) \(value) over \(pairs) pair\(pairs == 1 ? "" : "s") (\(raters.joined(separator: ", ")))"
    }

    public var json: JSONValue {
        var fields: [String: JSONValue] = ["pairs": .int(Int64(pairs)), "reviewers": JSONValue(raters), "summary": .string(summary)]
        fields["measure"] = measure.map { .string($0.rawValue) } ?? .null
        fields["kappa"] = kappa.map { .double($0.rounded(places: 4)) } ?? .null
        fields["observed_agreement"] = observed.map { .double($0.rounded(places: 4)) } ?? .null
        return .object(fields)
    }
}
