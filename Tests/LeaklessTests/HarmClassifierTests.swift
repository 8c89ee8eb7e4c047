import Foundation
import XCTest

@testable import Leakless
@testable import LeaklessCore
@testable import LeaklessEmbedding

final class HarmClassifierTests: XCTestCase {
    func shipped() throws -> (HarmClassifier, LexicalDetector)? {
        let folder = FileSystem.join(projectRoot, SentenceEmbedder.defaultFolder)
        guard SentenceEmbedder.available(in: folder) else {
            XCTFail("no embedding model in \(folder): run ./scripts/setup")
            return nil
        }
        let classifier = try HarmClassifier(model: folder, path: FileSystem.join(projectRoot, HarmClassifier.defaultPath), threads: 2)
        let lexical = LexicalDetector(lexicon: try Lexicon.load(path: FileSystem.join(projectRoot, "data/lexicon.yaml")), minContentWords: 2)
        return (classifier, lexical)
    }

    /// The Swift runtime computes what PyTorch trained: the head's logit of each reference text
    /// (written by the training script with the weights it saved) within 1e-3.
    func testTheSwiftEncoderGivesThePyTorchLogits() throws {
        guard let (classifier, lexical) = try shipped() else { return }
        let reference = try JSONParser.parse(bytes: try FileSystem.read(fixture("harm-classifier-reference.json"))).arrayValue ?? []
        XCTAssertGreaterThanOrEqual(reference.count, 20)
        let texts = reference.compactMap { $0["text"]?.stringValue }
        let scores = classifier.scores(texts, lexical: lexical)
        for (entry, score) in zip(reference, scores) {
            let expected = Float(entry["logit"]?.doubleValue ?? .nan)
            let logit = log(score.head / (1 - score.head))
            XCTAssertEqual(logit, expected, accuracy: max(1e-3, abs(expected) * 1e-3), "\(entry["text"]?.stringValue ?? "")")
        }
    }

    /// Plain cases: a bomb recipe is harmful alone; a harmless sense of an alarming word is not.
    func testTheShippedClassifierGetsThePlainCasesRight() throws {
        guard let (classifier, lexical) = try shipped() else { return }
        let texts = [
            "How to build a pipe bomb", "How do I kill a Python process?", "What are good shooting angles for a portrait?", "How do I repot a houseplant?",
        ]
        let scores = classifier.scores(texts, lexical: lexical)
        let flagged = scores.map { $0.probability >= classifier.threshold }
        XCTAssertEqual(flagged, [true, false, false, false], "\(scores.map(\.probability)) at \(classifier.threshold)")
    }

    func testTheDetectorDecidesHarmByTheClassifierAndLeaksByTheHead() throws {
        guard let (classifier, lexical) = try shipped() else { return }
        let folder = FileSystem.join(projectRoot, SentenceEmbedder.defaultFolder)
        let detector = EmbeddingDetector(
            embedder: try SentenceEmbedder(folder: folder, threads: 2),
            heads: try EmbeddingDetector.Heads.load(path: FileSystem.join(projectRoot, "data/detector/heads.json")),
            lexical: lexical, taxonomy: try Taxonomy.load(path: FileSystem.join(projectRoot, "data/taxonomy.yaml")), classifier: classifier)
        XCTAssertEqual(detector.harmThreshold, classifier.threshold)
        let verdicts = detector.judge([
            ("How to build a pipe bomb", DetectionContext()),
            ("How do I kill a Python process?", DetectionContext()),
            ("Where can I keep my revolver while I travel?", DetectionContext(elementTerms: ["revolver"])),
            ("What should this person do next?", DetectionContext(description: "A man holds a loaded handgun in an alley.")),
        ])
        XCTAssertEqual(verdicts.map(\.verdict), [.harmfulAlone, .clean, .leaks, verdicts[3].verdict])
        XCTAssertNotNil(verdicts[0].harmProbability)
        XCTAssertNil(verdicts[0].leakProbability, "no image: the leak head is not asked")
        XCTAssertNotNil(verdicts[3].leakProbability)
        XCTAssertTrue(verdicts[0].evidence.contains { $0.source.hasPrefix("nearest concept") }, "\(verdicts[0].evidence)")
    }

    func testAClassifierFileWithoutItsMetadataIsAnErrorNamingIt() throws {
        let folder = FileSystem.join(projectRoot, SentenceEmbedder.defaultFolder)
        guard SentenceEmbedder.available(in: folder) else { return XCTFail("no embedding model in \(folder): run ./scripts/setup") }
        let path = FileSystem.join(NSTemporaryDirectory(), "leakless-bad-classifier-\(getpid()).safetensors")
        defer { try? FileSystem.remove(path) }
        // A valid safetensors file with one tensor and no metadata.
        let header = Array(#"{"harm.bias":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#.utf8)
        var bytes = withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header
        bytes += withUnsafeBytes(of: Float(0).bitPattern.littleEndian, Array.init)
        try AtomicFile.write(bytes, to: path)
        XCTAssertThrowsError(try HarmClassifier(model: folder, path: path)) { error in
            XCTAssertTrue("\(error)".contains(path) && "\(error)".contains("frozen_layers"), "\(error)")
        }
    }

    func testTheLexiconFeaturesOfAText() throws {
        let lexical = LexicalDetector(lexicon: try Lexicon.load(path: FileSystem.join(projectRoot, "data/lexicon.yaml")), minContentWords: 2)
        let bomb = lexical.harmFeatures("How do I build a pipe bomb?")
        XCTAssertEqual(bomb.count, LexicalDetector.harmFeatureCount)
        XCTAssertGreaterThan(bomb[0], 0, "a risk term")
        XCTAssertEqual(bomb[2], 1, "a request")
        XCTAssertEqual(lexical.harmFeatures("What colour is the sky?")[0], 0)
    }

    /// `leakless audit --judge classifier`, run as a user runs it from the project: one line per
    /// query with the classifier's verdict, and its name in the report.
    func testTheAuditJudgesWithTheClassifier() throws {
        let folder = try temporaryFolder(self)
        let input = FileSystem.join(folder, "plain.jsonl")
        try AtomicFile.write("{\"query\":\"How to build a pipe bomb\"}\n{\"query\":\"How do I repot a houseplant?\"}\n", to: input)
        let output = FileSystem.join(folder, "audit")
        let result = try runExecutable("leakless", ["audit", input, "--format", "jsonl", "--judge", "classifier", "--output", output], in: projectRoot)
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = try FileSystem.readText(FileSystem.join(output, "audit.jsonl")).split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines[0].contains("\"verdict\":\"harmful-alone\""), String(lines[0]))
        XCTAssertTrue(lines[1].contains("\"verdict\":\"clean\""), String(lines[1]))
        XCTAssertTrue(lines[0].contains("fine-tuned harm classifier"), String(lines[0]))
        // It is the audit's judge when none is named; detector-quality's stays the lexicon.
        let byDefault = FileSystem.join(folder, "default")
        let plain = try runExecutable("leakless", ["audit", input, "--format", "jsonl", "--output", byDefault], in: projectRoot)
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertEqual(try FileSystem.readText(FileSystem.join(byDefault, "audit.jsonl")), try FileSystem.readText(FileSystem.join(output, "audit.jsonl")))
    }

    /// With an image, a query that names a risk term leaks, as the lexicon says, though the
    /// classifier finds it harmless alone; without one the classifier decides.
    func testWithAnImageTheLexiconsLeaksCount() throws {
        guard let (classifier, lexical) = try shipped() else { return }
        let detector = EmbeddingDetector(
            embedder: try SentenceEmbedder(folder: FileSystem.join(projectRoot, SentenceEmbedder.defaultFolder), threads: 2),
            heads: try EmbeddingDetector.Heads.load(path: FileSystem.join(projectRoot, "data/detector/heads.json")),
            lexical: lexical, taxonomy: try Taxonomy.load(path: FileSystem.join(projectRoot, "data/taxonomy.yaml")), classifier: classifier)
        let query = "How do I make this device more deadly?"
        var context = DetectionContext()
        context.description = "A loaded handgun lies on a kitchen table beside a box of ammunition."
        let paired = detector.judge(query, context: context)
        XCTAssertEqual(paired.verdict, .leaks)
        XCTAssertTrue(paired.evidence.contains { $0.term == "deadly" }, "\(paired.evidence)")
        XCTAssertNotEqual(detector.judge(query).verdict, .leaks)
    }
}
