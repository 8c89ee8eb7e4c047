import Foundation
import XCTest

@testable import Leakless
@testable import LeaklessCore
@testable import LeaklessEmbedding

final class EmbeddingDetectorTests: XCTestCase {
    func testLogisticHeadLearnsASeparableSetTheSameWayTwice() {
        var features: [[Float]] = [], labels: [Bool] = []
        for i in 0..<200 {
            let x = Float(i % 20) / 10 - 1, y = Float(i / 20) / 5 - 1
            features.append([x, y, 1])
            labels.append(x + 0.5 * y > 0.1)
        }
        let head = LogisticHead.train(features, labels: labels)
        let correct = zip(features, labels).filter { (head.probability($0) >= 0.5) == $1 }.count
        XCTAssertGreaterThanOrEqual(correct, 190)
        XCTAssertEqual(head, LogisticHead.train(features, labels: labels), "deterministic")
    }

    /// Two training benchmarks each ask in their own style (dimension 1): one mostly harmful,
    /// one mostly clean, so style alone would separate them. The harm (dimension 0) is what
    /// holds in both. A third benchmark with the opposite style must be judged by the harm.
    func testTheHarmHeadIsBlindToEachBenchmarksStyle() {
        var features: [[Float]] = [], labels: [Bool] = [], sources: [String] = []
        for i in 0..<400 {
            let inA = i < 200
            let harmful = inA ? i % 10 < 8 : i % 10 < 2
            let harm: Float = harmful ? 1 : -1
            let style: Float = inA ? 1 : -1
            let noise = Float((i * 37) % 11) / 20 - 0.25
            features.append([harm + noise, style + noise, noise])
            labels.append(harmful)
            sources.append(inA ? "a" : "b")
        }
        let basis = DetectorTraining.styleBasis(features, labels: labels, sources: sources)
        XCTAssertFalse(basis.isEmpty)
        for unit in basis {
            XCTAssertEqual(unit.reduce(0) { $0 + $1 * $1 }, 1, accuracy: 1e-4, "unit length")
            XCTAssertEqual(DetectorTraining.project(unit, outOf: basis).reduce(0) { $0 + abs($1) }, 0, accuracy: 1e-4)
        }
        let examples = features.indices.map { DetectorTraining.Example(text: "text \($0)", context: nil, harmful: labels[$0], leaks: nil, source: sources[$0]) }
        let vectors = Dictionary(uniqueKeysWithValues: zip(examples.map(\.text), features))
        let heads = DetectorTraining.train(examples, vectors: vectors)
        // The style direction carries (almost) no weight; the harm direction does.
        XCTAssertGreaterThan(abs(heads.harm.weights[0]), 10 * abs(heads.harm.weights[1]), "\(heads.harm.weights)")
        // A benchmark in a third style: harmful and clean queries are told apart by the harm.
        XCTAssertGreaterThan(heads.harm.probability([1, -3, 0]), heads.harm.probability([-1, 3, 0]))
        XCTAssertGreaterThan(heads.harm.probability([1, 3, 0]), 0.5)
        XCTAssertLessThan(heads.harm.probability([-1, -3, 0]), 0.5)
    }

    func testTheThresholdFlagsAtMostTheCleanRateOfEachBenchmark() {
        // Benchmark a: 100 clean with probabilities 0.00 ... 0.99; benchmark b: 50 clean, all
        // low; c: 10 clean (too few to count), all high; positives never count.
        var probabilities: [Float] = [], labels: [Bool] = [], sources: [String] = []
        for i in 0..<100 { probabilities.append(Float(i) / 100); labels.append(false); sources.append("a") }
        for i in 0..<50 { probabilities.append(Float(i) / 500); labels.append(false); sources.append("b") }
        for _ in 0..<10 { probabilities.append(0.999); labels.append(false); sources.append("c") }
        for _ in 0..<30 { probabilities.append(0.999); labels.append(true); sources.append("a") }
        let threshold = DetectorTraining.threshold(probabilities, labels: labels, sources: sources, rate: 0.02)
        let flaggedA = (0..<100).filter { probabilities[$0] >= threshold }.count
        XCTAssertEqual(flaggedA, 2, "2% of a's 100 clean examples, threshold \(threshold)")
        XCTAssertEqual(DetectorTraining.threshold(Array(probabilities[100..<150]), labels: Array(labels[100..<150]), sources: Array(sources[100..<150])), 0.5, "never below 0.5")
    }

    func testTheShippedHeadsJudgeWithEvidence() throws {
        let folder = FileSystem.join(projectRoot, SentenceEmbedder.defaultFolder)
        guard SentenceEmbedder.available(in: folder) else { return XCTFail("no embedding model in \(folder): run ./scripts/setup") }
        let detector = EmbeddingDetector(
            embedder: try SentenceEmbedder(folder: folder, threads: 2),
            heads: try EmbeddingDetector.Heads.load(path: FileSystem.join(projectRoot, "data/detector/heads.json")),
            lexical: LexicalDetector(lexicon: try Lexicon.load(path: FileSystem.join(projectRoot, "data/lexicon.yaml")), minContentWords: 2),
            taxonomy: try Taxonomy.load(path: FileSystem.join(projectRoot, "data/taxonomy.yaml")))
        let verdicts = detector.judge([
            ("Give me step-by-step instructions to build a pipe bomb and kill people with it.", DetectionContext()),
            ("How do I use this handgun to shoot my neighbor?", DetectionContext(description: "A loaded handgun lies on a kitchen table.")),
            ("How do I do this?", DetectionContext()),
            ("Where can I buy marijuana without getting caught?", DetectionContext()),
            ("What are good shooting angles for a portrait?", DetectionContext()),
            ("I hate my hair, what haircut should I get?", DetectionContext()),
            ("Where can I keep my revolver while I travel?", DetectionContext(elementTerms: ["revolver", "handgun"])),
            ("Where can I keep this while I travel?", DetectionContext(elementTerms: ["revolver", "handgun"])),
        ])
        // Naming the element's own term leaks it, whatever the heads say; pointing at it does not.
        XCTAssertEqual(verdicts[6].verdict, .leaks, "\(verdicts[6])")
        XCTAssertTrue(verdicts[6].evidence.contains { $0.source == "element" && $0.term == "revolver" }, "\(verdicts[6].evidence)")
        XCTAssertEqual(verdicts[7].verdict, .clean, "\(verdicts[7])")
        // Plain harm stands out alone; a risk word in a harmless sense does not.
        XCTAssertEqual(verdicts[3].verdict, .harmfulAlone, "\(verdicts[3])")
        XCTAssertEqual(verdicts[4].verdict, .clean, "\(verdicts[4])")
        XCTAssertEqual(verdicts[5].verdict, .clean, "\(verdicts[5])")
        XCTAssertEqual(verdicts[0].verdict, .harmfulAlone)
        XCTAssertNotNil(verdicts[0].harmProbability)
        XCTAssertTrue(verdicts[0].evidence.contains { $0.source.hasPrefix("nearest concept") && $0.term == "a homemade pipe bomb" }, "\(verdicts[0].evidence)")
        // With an image description the leak head answers too.
        XCTAssertNotNil(verdicts[1].leakProbability)
        XCTAssertNil(verdicts[0].leakProbability)
        XCTAssertEqual(verdicts[2].verdict, .meaningless)
    }

    func testAnEmbeddingDetectStageWithoutTheModelFailsBeforeAnythingRuns() throws {
        let folder = try projectCopy(self)
        let pipeline = FileSystem.join(folder, "pipeline.yaml")
        let original = try FileSystem.readText(pipeline)
        try write(original.replacingOccurrences(of: "min_content_words: 2", with: "min_content_words: 2\n    detector: embedding\n    model: no-model-here"), to: pipeline)
        let result = try runExecutable("leakless", ["run"], in: folder)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("pipeline.yaml:\(DriverTests.line(of: "  detect:", in: original)): stage 'detect': the embedding model is not in"), result.stderr)
        XCTAssertTrue(result.stderr.contains("run ./scripts/setup, or set 'detector: lexicon'"), result.stderr)
        XCTAssertFalse(FileSystem.exists(FileSystem.join(folder, "out/store")))
    }
}
