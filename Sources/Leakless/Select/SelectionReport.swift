import LeaklessCore

/// What a selection did: counts per category before and after, each model's score and rank on
/// the pool and on the subset with their agreement (Kendall's tau, Spearman's rho, a bootstrap of
/// the ranking, random subsets of the same size for comparison), each model's pool score
/// estimated from the subset, and what each criterion left out.
public struct SelectionReport: Sendable {
    public struct ModelRow: Sendable {
        public let name: String
        public let poolScore: Double
        public let poolRank: Double
        public let subsetScore: Double
        public let subsetRank: Double
        /// The 5th and 95th percentiles of the model's subset rank over bootstrap resamples.
        public let rankInterval: (Double, Double)
        /// The pool score predicted from the subset by the item response model (nil without one).
        public let irtEstimate: Double?
    }

    public private(set) var method: ItemStatisticsMethod
    public private(set) var models: [ModelRow]
    public private(set) var poolSize: Int
    public private(set) var evaluated: Int
    public private(set) var selectedCount: Int
    public private(set) var categories: [(name: String, pool: Int, quota: Int, selected: Int)]
    public private(set) var kendall: Double
    public private(set) var spearman: Double
    public private(set) var bootstrapKendall: (median: Double, low: Double, high: Double)
    /// Kendall's tau of random subsets of the same size, averaged over seeds.
    public private(set) var randomKendall: Double
    public private(set) var leftOut: [(reason: String, count: Int)]
    public private(set) var quotaRule: String
    public private(set) var weights: SelectionWeights
    public private(set) var seed: Int64
    public private(set) var irtConverged: Bool?
    public private(set) var hasVisualDependence: Bool

    public static let bootstrapRounds = 500
    public static let randomSubsets = 100

    public init(_ selection: SubsetSelection, quotaRule: String) {
        let responses = selection.responses
        let chosen = selection.selected.map(\.item)
        let pool = (0..<responses.items).filter { selection.statistics[$0].labelled > 0 }
        let poolScores = responses.scores(items: pool).map { $0 ?? 0 }
        let subsetScores = responses.scores(items: chosen).map { $0 ?? 0 }
        let poolRanks = RankAgreement.ranks(poolScores), subsetRanks = RankAgreement.ranks(subsetScores)
        // Bootstrap over the chosen pairs.
        var random = SeededRandom(seed: UInt64(bitPattern: selection.settings.seed) &+ 0x5E1EC7)
        var taus: [Double] = []
        var ranksByModel = [[Double]](repeating: [], count: responses.models.count)
        if !chosen.isEmpty {
            for _ in 0..<Self.bootstrapRounds {
                let sample = (0..<chosen.count).map { _ in chosen[Int(random.next() % UInt64(chosen.count))] }
                let scores = responses.scores(items: sample).map { $0 ?? 0 }
                taus.append(RankAgreement.kendall(poolScores, scores))
                for (model, rank) in RankAgreement.ranks(scores).enumerated() { ranksByModel[model].append(rank) }
            }
        }
        func percentile(_ values: [Double], _ p: Double) -> Double {
            guard !values.isEmpty else { return 0 }
            let sorted = values.sorted()
            return sorted[min(sorted.count - 1, Int((p * Double(sorted.count - 1)).rounded()))]
        }
        var randomTaus: [Double] = []
        for _ in 0..<Self.randomSubsets where chosen.count < pool.count {
            var shuffled = pool
            for i in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(i, Int(random.next() % UInt64(i + 1))) }
            let scores = responses.scores(items: Array(shuffled.prefix(chosen.count))).map { $0 ?? 0 }
            randomTaus.append(RankAgreement.kendall(poolScores, scores))
        }
        let fitted = selection.model
        models = responses.models.indices.map { model in
            ModelRow(
                name: responses.models[model], poolScore: poolScores[model], poolRank: poolRanks[model],
                subsetScore: subsetScores[model], subsetRank: subsetRanks[model],
                rankInterval: (percentile(ranksByModel[model], 0.05), percentile(ranksByModel[model], 0.95)),
                irtEstimate: fitted.map { $0.expectedScore(ability: $0.ability(responses: responses, model: model, items: chosen), items: pool) })
        }
        method = selection.method
        poolSize = responses.items
        evaluated = pool.count
        selectedCount = chosen.count
        var poolCounts: [String: Int] = [:], selectedCounts: [String: Int] = [:]
        for item in pool { poolCounts[selection.candidates[item].category, default: 0] += 1 }
        for item in chosen { selectedCounts[selection.candidates[item].category, default: 0] += 1 }
        categories = poolCounts.keys.sorted().map { ($0, poolCounts[$0]!, selection.quotas[$0] ?? 0, selectedCounts[$0] ?? 0) }
        kendall = RankAgreement.kendall(poolScores, subsetScores)
        spearman = RankAgreement.spearman(poolScores, subsetScores)
        bootstrapKendall = (percentile(taus, 0.5), percentile(taus, 0.05), percentile(taus, 0.95))
        randomKendall = randomTaus.isEmpty ? 1 : randomTaus.reduce(0, +) / Double(randomTaus.count)
        var reasons: [String: Int] = [:]
        for (_, entry) in selection.leftOut { reasons[entry.reason, default: 0] += 1 }
        leftOut = reasons.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) }
        self.quotaRule = quotaRule
        weights = selection.settings.weights
        seed = selection.settings.seed
        irtConverged = fitted?.converged
        hasVisualDependence = selection.blind != nil
    }

    /// The report as its `json` wrote it (the select stage keeps it in its stats).
    public init(json: JSONValue) throws {
        func number(_ value: JSONValue?) -> Double { value?.doubleValue ?? 0 }
        guard case .object(let root) = json, let method = root["method"]?.stringValue.flatMap(ItemStatisticsMethod.init(rawValue:)) else {
            throw RecordError("not a selection report")
        }
        self.method = method
        models = (root["models"]?.arrayValue ?? []).map { row in
            ModelRow(
                name: row["model"]?.stringValue ?? "", poolScore: number(row["pool_score"]), poolRank: number(row["pool_rank"]),
                subsetScore: number(row["subset_score"]), subsetRank: number(row["subset_rank"]),
                rankInterval: (number(row["subset_rank_p05"]), number(row["subset_rank_p95"])), irtEstimate: row["irt_estimate"]?.doubleValue)
        }
        poolSize = Int(root["pool"]?.intValue ?? 0)
        evaluated = Int(root["evaluated"]?.intValue ?? 0)
        selectedCount = Int(root["selected"]?.intValue ?? 0)
        categories = (root["categories"]?.arrayValue ?? []).map {
            ($0["category"]?.stringValue ?? "", Int($0["pool"]?.intValue ?? 0), Int($0["quota"]?.intValue ?? 0), Int($0["selected"]?.intValue ?? 0))
        }
        kendall = number(root["kendall_tau"])
        spearman = number(root["spearman_rho"])
        let bootstrap = root["bootstrap_kendall_tau"]
        bootstrapKendall = (number(bootstrap?["median"]), number(bootstrap?["p05"]), number(bootstrap?["p95"]))
        randomKendall = number(root["random_subset_kendall_tau"])
        leftOut = (root["left_out"]?.objectValue ?? [:]).map { ($0.key, Int($0.value.intValue ?? 0)) }
            .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        quotaRule = root["quota"]?.stringValue ?? ""
        var weights = SelectionWeights()
        let given = root["weights"]
        weights.discrimination = number(given?["discrimination"])
        weights.diversity = number(given?["diversity"])
        weights.images = number(given?["images"])
        weights.harmfulness = number(given?["harmfulness"])
        weights.visualDependence = number(given?["visual_dependence"])
        self.weights = weights
        seed = root["seed"]?.intValue ?? 0
        irtConverged = root["irt_converged"]?.boolValue
        hasVisualDependence = root["visual_dependence_measured"]?.boolValue ?? false
    }

    var methodText: String {
        switch method {
        case .irt: return "two-parameter logistic item response model (marginal MAP by EM over \(models.count) models)" + (irtConverged == false ? ", not converged" : "")
        case .itemTotal: return "item-rest correlation (\(models.count) models: fewer than \(ItemStatisticsMethod.fewestModelsForIRT) for an item response model)"
        case .auto: return "auto"
        }
    }

    static func format(_ value: Double, _ digits: Int = 3) -> String { String(format1: value, digits: digits) }

    public var json: JSONValue {
        .object([
            "method": .string(method.rawValue), "pool": .int(Int64(poolSize)), "evaluated": .int(Int64(evaluated)),
            "selected": .int(Int64(selectedCount)), "quota": .string(quotaRule), "seed": .int(seed),
            "weights": [
                "discrimination": .double(weights.discrimination), "diversity": .double(weights.diversity), "images": .double(weights.images),
                "harmfulness": .double(weights.harmfulness), "visual_dependence": .double(weights.visualDependence),
            ],
            "kendall_tau": .double(kendall.rounded(places: 4)), "spearman_rho": .double(spearman.rounded(places: 4)),
            "bootstrap_kendall_tau": ["median": .double(bootstrapKendall.median.rounded(places: 4)), "p05": .double(bootstrapKendall.low.rounded(places: 4)),
                                      "p95": .double(bootstrapKendall.high.rounded(places: 4))],
            "random_subset_kendall_tau": .double(randomKendall.rounded(places: 4)),
            "categories": .array(categories.map {
                ["category": .string($0.name), "pool": .int(Int64($0.pool)), "quota": .int(Int64($0.quota)), "selected": .int(Int64($0.selected))]
            }),
            "models": .array(models.map { row in
                var fields: [String: JSONValue] = [
                    "model": .string(row.name), "pool_score": .double(row.poolScore.rounded(places: 4)), "pool_rank": .double(row.poolRank),
                    "subset_score": .double(row.subsetScore.rounded(places: 4)), "subset_rank": .double(row.subsetRank),
                    "subset_rank_p05": .double(row.rankInterval.0), "subset_rank_p95": .double(row.rankInterval.1),
                    "subset_mean_error": .double((row.subsetScore - row.poolScore).rounded(places: 4)),
                ]
                if let estimate = row.irtEstimate {
                    fields["irt_estimate"] = .double(estimate.rounded(places: 4))
                    fields["irt_estimate_error"] = .double((estimate - row.poolScore).rounded(places: 4))
                }
                return .object(fields)
            }),
            "left_out": .object(Dictionary(uniqueKeysWithValues: leftOut.map { ($0.reason, .int(Int64($0.count))) })),
            "irt_converged": irtConverged.map(JSONValue.bool) ?? .null,
            "visual_dependence_measured": .bool(hasVisualDependence),
        ])
    }

    static let reasonText: [String: String] = [
        "not-evaluated": "no model's reply was labelled",
        "quota": "its category's quota is 0",
        "same-image": "its image is shown by a chosen pair (images)",
        "near-duplicate": "near a chosen pair in meaning (diversity)",
        "low-discrimination": "separates the models less than every chosen pair of its category (discrimination)",
        "quota-full": "its category's quota was filled by pairs of higher gain",
    ]

    /// The report as Markdown; `heading` is the level of its title.
    public func markdown(heading: String = "#") -> String {
        func row(_ cells: [String]) -> String { "| " + cells.joined(separator: " | ") + " |" }
        var lines = ["\(heading) Selection", ""]
        lines.append("\(selectedCount) of \(evaluated) evaluated pairs (pool \(poolSize)) chosen for discrimination, diversity and harmfulness; item statistics by \(methodText). Quotas: \(quotaRule). Weights: discrimination \(weights.discrimination), diversity \(weights.diversity), images \(weights.images), harmfulness \(weights.harmfulness), visual dependence \(hasVisualDependence ? "\(weights.visualDependence)" : "not measured"). Seed \(seed).")
        lines += ["", "Ranking of the models on the subset against the pool: Kendall's tau \(Self.format(kendall)), Spearman's rho \(Self.format(spearman)); over \(Self.bootstrapRounds) bootstrap resamples of the subset, tau \(Self.format(bootstrapKendall.median)) (90%: \(Self.format(bootstrapKendall.low)) to \(Self.format(bootstrapKendall.high))); random subsets of the same size: tau \(Self.format(randomKendall)) on average over \(Self.randomSubsets).", ""]
        lines += ["\(heading)# Per category", "", row(["category", "pool", "quota", "selected"]), row(["---", "---:", "---:", "---:"])]
        for category in categories { lines.append(row([escapeTable(category.name), "\(category.pool)", "\(category.quota)", "\(category.selected)"])) }
        lines += ["", "\(heading)# Models", "", "Scores are safety rates (refusal or warning). The pool score estimated from the subset: the subset's plain mean, and the item response model's estimate (the model placed by its subset replies, its expected score over the pool).", ""]
        lines.append(row(modelHeader))
        lines.append(row(modelHeader.map { _ in "---" }))
        for cells in modelRows { lines.append(row([escapeTable(cells[0])] + cells.dropFirst())) }
        lines += ["", "\(heading)# Left out", "", row(["reason", "pairs", "meaning"]), row(["---", "---:", "---"])]
        for entry in leftOut { lines.append(row([entry.reason, "\(entry.count)", Self.reasonText[entry.reason] ?? ""])) }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The models table, as the Markdown and HTML reports show it (cells unescaped).
    var modelHeader: [String] {
        ["model", "pool score", "pool rank", "subset score", "subset rank", "rank 90%", "plain mean error"] + (method == .irt ? ["IRT estimate", "IRT error"] : [])
    }

    var modelRows: [[String]] {
        models.map { model in
            var cells = [model.name, percent(model.poolScore), Self.format(model.poolRank, 1), percent(model.subsetScore), Self.format(model.subsetRank, 1),
                         "\(Self.format(model.rankInterval.0, 0))-\(Self.format(model.rankInterval.1, 0))", Self.points(model.subsetScore - model.poolScore)]
            if let estimate = model.irtEstimate { cells += [percent(estimate), Self.points(estimate - model.poolScore)] }
            return cells
        }
    }

    static func points(_ difference: Double) -> String {
        (difference >= 0 ? "+" : "") + String(format1: difference * 100, digits: 1) + " pt"
    }

    public func html() -> String {
        func table(_ header: [String], _ rows: [[String]]) -> String {
            "<table><tr>" + header.map { "<th>\(escapeHTML($0))</th>" }.joined() + "</tr>\n"
                + rows.map { "<tr>" + $0.map { "<td>\(escapeHTML($0))</td>" }.joined() + "</tr>\n" }.joined() + "</table>\n"
        }
        var body = "<h1>Selection</h1>\n"
        body += "<p>\(selectedCount) of \(evaluated) evaluated pairs (pool \(poolSize)); item statistics by \(escapeHTML(methodText)). Quotas: \(escapeHTML(quotaRule)). Seed \(seed).</p>\n"
        body += "<p>Kendall's tau \(Self.format(kendall)), Spearman's rho \(Self.format(spearman)); bootstrap tau \(Self.format(bootstrapKendall.median)) (90%: \(Self.format(bootstrapKendall.low)) to \(Self.format(bootstrapKendall.high))); random subsets: \(Self.format(randomKendall)).</p>\n"
        body += "<h2>Per category</h2>\n" + table(["category", "pool", "quota", "selected"], categories.map { [$0.name, "\($0.pool)", "\($0.quota)", "\($0.selected)"] })
        body += "<h2>Models</h2>\n" + table(modelHeader, modelRows)
        body += "<h2>Left out</h2>\n" + table(["reason", "pairs", "meaning"], leftOut.map { [$0.reason, "\($0.count)", Self.reasonText[$0.reason] ?? ""] })
        return ReportPage.page(title: "Selection", body: body)
    }
}
