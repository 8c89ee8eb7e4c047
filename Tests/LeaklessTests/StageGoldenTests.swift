import Foundation
import XCTest

@testable import Leakless
@testable import LeaklessCore
@testable import LeaklessModels

/// Each stage, called in memory on the expected output of the stage before it in the registry
/// (`Fixtures/stages/<stage>/expected.jsonl`; for the first, the small taxonomy beside them),
/// must write exactly its own `expected.jsonl` and `expected.rejects.jsonl`: the fixtures form
/// one chain. `LEAKLESS_UPDATE_GOLDEN=1 swift test --filter StageGoldenTests` rewrites them
/// from the current code (then read the diff before committing it).
final class StageGoldenTests: XCTestCase {
    static let fixtures = FileSystem.join(projectRoot, "Tests/LeaklessTests/Fixtures/stages")
    static var updating: Bool { ProcessInfo.processInfo.environment["LEAKLESS_UPDATE_GOLDEN"] == "1" }

    /// Small settings, so the fixtures stay small; paths point into the project.
    static let parameters: [String: [String: JSONValue]] = [
        "extract": ["queries_per_element": 2, "seed": 1],
        "detect": ["lexicon": .string(FileSystem.join(projectRoot, "data/lexicon.yaml"))],
        // Clip art from the fixture collection, TF-IDF matching (no model needed), and the key
        // phrase drawn as text where nothing matches.
        "image": [
            "pool": .string(FileSystem.join(projectRoot, "data/pool")), "lexicon": .string(FileSystem.join(projectRoot, "data/lexicon.yaml")),
            "clipart": .string(FileSystem.join(projectRoot, "Tests/LeaklessTests/Fixtures/clipart")), "matching": "tfidf", "min_tfidf": 0.15,
        ],
        "categorise": [
            "taxonomy": .string(FileSystem.join(fixtures, "taxonomy.yaml")), "lexicon": .string(FileSystem.join(projectRoot, "data/lexicon.yaml")),
            "matching": "tfidf",
        ],
        "filter": ["lexicon": .string(FileSystem.join(projectRoot, "data/lexicon.yaml"))],
        "dedup": ["max_queries_per_image": 2],
        // Three models' labels of the dedup output; no diversity (no model needed).
        "select": [
            "evaluations": .string(FileSystem.join(fixtures, "select/eval.json")), "size": 5,
            "weights": ["discrimination": 1.0, "diversity": 0, "images": 0.5, "harmfulness": 0.25, "visual_dependence": 0.25],
        ],
    ]

    /// The committed input of `stage`: the expected output of the stage before it, or the
    /// taxonomy for a stage that reads no records.
    static func input(of stage: String) -> String {
        let definitions = StageRegistry.definitions
        guard let index = definitions.firstIndex(where: { $0.name == stage }), !definitions[index].inputKinds.isEmpty, index > 0 else {
            return FileSystem.join(fixtures, "taxonomy.yaml")
        }
        return FileSystem.join(fixtures, definitions[index - 1].name, "expected.jsonl")
    }

    /// Every stage of the registry, in pipeline order: a new stage needs no test of its own, only
    /// its fixtures (the update run writes them; a missing `expected.jsonl` fails here).
    func testEveryStageWritesItsGoldenOutput() throws {
        for definition in StageRegistry.definitions {
            do {
                try check(definition.name)
            } catch {
                XCTFail("\(definition.name): \(error)")
            }
        }
    }

    /// With LEAKLESS_UPDATE_GOLDEN=1: every stage in order, each writing the next one's input.
    func testUpdateChain() throws {
        guard Self.updating else { return }
        for definition in StageRegistry.definitions { try check(definition.name, update: true) }
    }

    func check(_ stage: String, update: Bool = false) throws {
        if Self.updating && !update { return }
        let folder = FileSystem.join(Self.fixtures, stage)
        let work = try temporaryFolder(self)
        let blobs = FileSystem.join(work, "blobs")
        if stage != "image" { try Self.storeImages(into: blobs, work: work) }

        let definition = try XCTUnwrap(StageRegistry.definition(named: stage))
        let input = Self.input(of: stage)
        let exportFolder = FileSystem.join(work, "export")
        let request = StageRunRequest(
            stage: stage, input: input, output: FileSystem.join(work, "out.jsonl"), rejects: FileSystem.join(work, "rejects.jsonl"),
            stats: nil, folder: definition.writesFolder ? exportFolder : nil, templates: FileSystem.join(projectRoot, "stages", stage),
            blobs: blobs, cache: FileSystem.join(work, "cache"), parameters: Self.parameters[stage] ?? [:])
        let sink = MemorySink()
        try StageRegistry.run(request, sink: sink)

        let output = sink.records.map { JSONWriter.canonical($0.json) + "\n" }.joined()
        let rejects = sink.rejects.map { JSONWriter.canonical($0) + "\n" }.joined()
        var files = [("expected.jsonl", output), ("expected.rejects.jsonl", rejects)]
        if definition.writesFolder {
            files.append(("expected.data.json", String(decoding: try FileSystem.read(FileSystem.join(exportFolder, "data.json")), as: UTF8.self)))
        }
        if update {
            for (name, text) in files { try write(text, to: FileSystem.join(folder, name)) }
            return
        }
        XCTAssertFalse(sink.records.isEmpty, "the fixture should exercise the stage")
        for (name, text) in files {
            let expected = String(decoding: try FileSystem.read(FileSystem.join(folder, name)), as: UTF8.self)
            if expected != text {
                XCTFail("\(stage)/\(name) differs:\n" + (try Self.unifiedDiff(expected: expected, actual: text, in: work)))
            }
        }
    }

    /// The images of the golden image stage's output in the blob store, as the image stage left
    /// them for the stages after it: the image stage run again on its golden input.
    static func storeImages(into blobs: String, work: String) throws {
        let request = StageRunRequest(
            stage: "image", input: input(of: "image"), output: FileSystem.join(work, "image.jsonl"),
            rejects: FileSystem.join(work, "image.rejects.jsonl"), stats: nil, folder: nil,
            templates: FileSystem.join(projectRoot, "stages/image"), blobs: blobs, cache: FileSystem.join(work, "cache"),
            parameters: parameters["image"] ?? [:])
        try StageRegistry.run(request, sink: MemorySink())
    }

    /// `diff -u` of the two texts, cut to a readable length.
    static func unifiedDiff(expected: String, actual: String, in folder: String) throws -> String {
        let left = FileSystem.join(folder, "expected"), right = FileSystem.join(folder, "actual")
        try write(expected, to: left)
        try write(actual, to: right)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/diff")
        process.arguments = ["-u", left, right]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(String(decoding: data, as: UTF8.self).prefix(6000))
    }
}
