import Foundation
import LeaklessCore
import XCTest

@testable import Leakless

typealias SyntheticPool = SyntheticSelectionPool

final class SelectionTests: XCTestCase {
    /// Each item's parameters fitted as if every model's true ability were known: the most its
    /// replies can tell.
    static func oracleDiscrimination(_ pool: SyntheticPool) -> [Double] {
        (0..<pool.responses.items).map { item in
            let safe = (0..<pool.responses.models.count).map { Double(pool.responses[$0, item]) }
            let seen = [Double](repeating: 1, count: safe.count)
            return exp(TwoParameterLogistic.fitItem(logSlope: 0, difficulty: 0, safe: safe, seen: seen, at: pool.abilities, steps: 100).0)
        }
    }

    func testTheFittedDiscriminationFollowsTheTruth() {
        // 12 models: each pair has 12 replies, which bound what any fit can recover; EM must get
        // about as close as a fit that knew the models' true abilities.
        let pool = SyntheticPool(models: 12, items: 2000, seed: 7)
        let fitted = TwoParameterLogistic.fit(pool.responses)
        XCTAssertTrue(fitted.converged, "EM did not converge in \(fitted.iterations) steps")
        let correlation = ItemTotalStatistics.pearson(fitted.discrimination, pool.discrimination)!
        let oracle = ItemTotalStatistics.pearson(Self.oracleDiscrimination(pool), pool.discrimination)!
        XCTAssertGreaterThanOrEqual(correlation, oracle - 0.05, "fitted discrimination \(correlation) against the truth; with known abilities \(oracle)")
        XCTAssertGreaterThanOrEqual(correlation, 0.55, "fitted discrimination against the truth")
        print("12 models: fitted discrimination against the truth \(correlation), with known abilities \(oracle)")
        XCTAssertGreaterThanOrEqual(ItemTotalStatistics.pearson(fitted.difficulty, pool.difficulty)!, 0.75, "fitted difficulty against the truth")
        XCTAssertGreaterThanOrEqual(RankAgreement.kendall(fitted.ability, pool.abilities), 0.9, "abilities")
        // 80 models: at least 0.8.
        let larger = SyntheticPool(models: 80, items: 2000, seed: 8)
        let fittedLarger = TwoParameterLogistic.fit(larger.responses)
        XCTAssertGreaterThanOrEqual(ItemTotalStatistics.pearson(fittedLarger.discrimination, larger.discrimination)!, 0.8, "80 models")
    }

    func testATwentyPercentSubsetRanksTheModelsAsThePoolDoesAndBetterThanRandomSubsets() throws {
        var chosenTaus: [Double] = [], randomTaus: [Double] = []
        for seed in [3, 11, 29, 41] as [UInt64] {
            let pool = SyntheticPool(models: 12, items: 2000, seed: seed)
            var settings = SelectionSettings(size: 400)
            settings.seed = Int64(seed)
            var selection = try SubsetSelection(candidates: pool.candidates, responses: pool.responses, settings: settings)
            selection.run()
            XCTAssertEqual(selection.method, .irt)
            XCTAssertEqual(selection.selected.count, 400)
            // Quotas hold exactly, and sum to the size.
            var perCategory: [String: Int] = [:]
            for entry in selection.selected { perCategory[pool.candidates[entry.item].category, default: 0] += 1 }
            XCTAssertEqual(perCategory, selection.quotas.filter { $0.value > 0 })
            XCTAssertEqual(selection.quotas.values.reduce(0, +), 400)
            let report = SelectionReport(selection, quotaRule: "proportional")
            XCTAssertGreaterThanOrEqual(report.kendall, 0.9, "seed \(seed): tau of the chosen subset")
            chosenTaus.append(report.kendall)
            randomTaus.append(report.randomKendall)
            // Every pair left out has a reason, and the chosen and left out make the pool.
            XCTAssertEqual(selection.leftOut.count + selection.selected.count, 2000)
        }
        let chosen = chosenTaus.reduce(0, +) / 4, random = randomTaus.reduce(0, +) / 4
        XCTAssertGreaterThan(chosen, random, "chosen subsets \(chosenTaus) against random ones \(randomTaus)")
    }

    func testTheSelectionIsTheSameForASeedAndQuotaRulesHold() throws {
        let pool = SyntheticPool(models: 5, items: 300, seed: 5)
        var settings = SelectionSettings(size: 60)
        settings.quota = .equal
        var first = try SubsetSelection(candidates: pool.candidates, responses: pool.responses, settings: settings)
        first.run()
        var second = try SubsetSelection(candidates: pool.candidates, responses: pool.responses, settings: settings)
        second.run()
        XCTAssertEqual(first.selected.map(\.item), second.selected.map(\.item))
        // Five models: too few for an item response model, so item-rest correlations.
        XCTAssertEqual(first.method, .itemTotal)
        XCTAssertEqual(Set(first.quotas.values), [15])
        settings.quota = .table(["Illegal Activity": 30, "Self-Harm": 20, "Privacy": 10, "Violent": 0])
        var table = try SubsetSelection(candidates: pool.candidates, responses: pool.responses, settings: settings)
        table.run()
        var perCategory: [String: Int] = [:]
        for entry in table.selected { perCategory[pool.candidates[entry.item].category, default: 0] += 1 }
        XCTAssertEqual(perCategory, ["Illegal Activity": 30, "Self-Harm": 20, "Privacy": 10])
        XCTAssertTrue(table.leftOut.values.contains { $0.reason == "quota" })
        // A small category gives what it cannot fill to the others.
        let quotas = try SubsetSelection.quotas(.equal, size: 10, categories: ["a", "b", "b", "b", "b", "b", "c", "c", "c", "c", "c"])
        XCTAssertEqual(quotas, ["a": 1, "b": 5, "c": 4])
    }

    /// With image-blind labels, each pair's visual dependence: safe with the image minus safe
    /// without it, over the models that have both.
    func testVisualDependenceFromImageBlindLabels() throws {
        var seeing = ResponseMatrix(models: ["a", "b"], items: 3)
        var blind = ResponseMatrix(models: ["a", "b"], items: 3)
        for (item, values) in [(1, 0, 1, 1), (1, 1, 1, 1), (0, 0, 0, 0)].enumerated() {
            seeing[0, item] = Int8(values.0); blind[0, item] = Int8(values.1)
            seeing[1, item] = Int8(values.2); blind[1, item] = Int8(values.3)
        }
        let candidates = (0..<3).map { SelectionCandidate(id: "p\($0)", category: "Violent", image: "i\($0)") }
        var settings = SelectionSettings(size: 1)
        settings.weights = SelectionWeights()
        settings.weights.discrimination = 0
        settings.weights.images = 0
        settings.weights.harmfulness = 0
        var selection = try SubsetSelection(candidates: candidates, responses: seeing, blind: blind, settings: settings)
        selection.run()
        XCTAssertEqual(selection.statistics.map(\.visualDependence), [0.5, 0, 0])
        XCTAssertEqual(selection.statistics.map(\.harmfulness), [0, 0, 1])
        XCTAssertEqual(selection.selected.map(\.item), [0], "visual dependence alone chooses the pair safer with its image")
    }

    func testBadSelectionRequestsAreOneLineErrors() {
        let pool = SyntheticPool(models: 4, items: 50, seed: 9)
        XCTAssertThrowsError(try SubsetSelection(candidates: pool.candidates, responses: pool.responses, settings: SelectionSettings(size: 51))) {
            XCTAssertEqual("\($0)", "size 51 is above the 50 evaluated pairs of the pool")
        }
        var settings = SelectionSettings(size: 10)
        settings.quota = .table(["Gambling": 10])
        XCTAssertThrowsError(try SubsetSelection(candidates: pool.candidates, responses: pool.responses, settings: settings)) {
            XCTAssertTrue("\($0)".hasPrefix("the quota table names 'Gambling', which no evaluated pair of the pool has"), "\($0)")
        }
        settings.quota = .table(["Violent": 4])
        XCTAssertThrowsError(try SubsetSelection(candidates: pool.candidates, responses: pool.responses, settings: settings)) {
            XCTAssertEqual("\($0)", "the quota table asks for 4 pairs, not the size 10")
        }
    }

    func testRankAgreement() {
        XCTAssertEqual(RankAgreement.kendall([1, 2, 3, 4], [10, 20, 30, 40]), 1)
        XCTAssertEqual(RankAgreement.kendall([1, 2, 3, 4], [40, 30, 20, 10]), -1)
        XCTAssertEqual(RankAgreement.kendall([1, 2, 3], [1, 3, 2]), 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(RankAgreement.ranks([0.5, 0.9, 0.5, 0.1]), [2.5, 1, 2.5, 4])
        XCTAssertEqual(RankAgreement.spearman([1, 2, 3, 4], [1, 2, 4, 3]), 0.8, accuracy: 1e-12)
    }
}
