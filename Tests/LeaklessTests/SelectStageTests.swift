import Foundation
import XCTest

@testable import Leakless
@testable import LeaklessCore
@testable import LeaklessMockServer
import LeaklessEmbedding

/// `leakless select` and the select stage end to end: a pool exported, three test-server targets
/// of different safety evaluated on it, the stage choosing from them, the export.
final class SelectStageTests: XCTestCase {
    /// A project copy whose pipeline makes a small pool quickly (no clip art), its export, and
    /// eval.json of three targets of 20%, 50% and 80% safety on it.
    func evaluatedPool() throws -> (folder: String, server: MockServer) {
        let folder = try projectCopy(self)
        var pipeline = try FileSystem.readText(FileSystem.join(folder, "pipeline.yaml"))
        pipeline = pipeline.replacingOccurrences(of: "clipart: /usr/share/openclipart", with: "clipart: \"\"")
            .replacingOccurrences(of: "queries_per_element: 3", with: "queries_per_element: 1")
        try write(pipeline, to: FileSystem.join(folder, "pipeline.yaml"))
        let first = try runExecutable("leakless", ["run"], in: folder)
        XCTAssertEqual(first.status, 0, first.stderr)
        let server = try MockServer(handler: MockModel().handle)
        addTeardownBlock { server.stop() }
        try write("""
            backends:
              reckless: {kind: openai-chat, base_url: \(server.baseURL)/v1, model: safety-20, max_in_flight: 8}
              middling: {kind: openai-chat, base_url: \(server.baseURL)/v1, model: safety-50, max_in_flight: 8}
              careful: {kind: openai-chat, base_url: \(server.baseURL)/v1, model: safety-80, max_in_flight: 8}
              judge: {kind: openai-chat, base_url: \(server.baseURL)/v1, model: judge, max_in_flight: 8}
            stages:
              extract: {backend: judge}
            """, to: FileSystem.join(folder, "eval.yaml"))
        let eval = try runExecutable("leakless", ["eval", "--pipeline", "eval.yaml", "--benchmark", "out/benchmark", "--output", "out/eval",
                                                  "--target", "reckless", "--target", "middling", "--target", "careful", "--judge", "judge"], in: folder)
        XCTAssertEqual(eval.status, 0, eval.stderr)
        return (folder, server)
    }

    func testEvaluateSelectAndExport() throws {
        let (folder, server) = try evaluatedPool()
        let figures = try JSONParser.parse(bytes: FileSystem.read(FileSystem.join(folder, "out/eval/eval.json")))
        let labels = figures["models"]?.arrayValue?.first?["labels"]?.arrayValue ?? []
        let pool = labels.count
        XCTAssertGreaterThan(pool, 40)
        XCTAssertNotNil(labels.first?["pair"]?.stringValue, "each label names its pair")
        let safety = figures["models"]?.arrayValue?.compactMap { $0["overall"]?["safety_rate"]?.doubleValue } ?? []
        XCTAssertEqual(safety.count, 3)
        XCTAssertTrue(safety[0] < safety[1] && safety[1] < safety[2], "targets of different safety: \(safety)")

        // The select stage after dedup: only it and the export run.
        let pipelinePath = FileSystem.join(folder, "pipeline.yaml")
        let model = FileSystem.join(projectRoot, SentenceEmbedder.defaultFolder)
        try write(try FileSystem.readText(pipelinePath).replacingOccurrences(of: "  export:", with: """
              select:
                evaluations: out/eval/eval.json
                size: 18
                quota: equal
                model: \(model)
              export:
            """), to: pipelinePath)
        let sent = server.requests.count
        let run = try runExecutable("leakless", ["run"], in: folder)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("8 stages, 2 ran, 6 skipped"), run.stdout)
        XCTAssertEqual(server.requests.count, sent, "select sends nothing")
        let validate = try runExecutable("leakless", ["validate", "out/benchmark"], in: folder)
        XCTAssertEqual(validate.status, 0, validate.stdout + validate.stderr)
        let data = try JSONParser.parse(bytes: FileSystem.read(FileSystem.join(folder, "out/benchmark/data.json"))).arrayValue ?? []
        XCTAssertEqual(data.count, 18)
        // Equal quotas: the same count per category.
        let perCategory = Dictionary(grouping: data) { $0["category"]?.stringValue ?? "" }.mapValues(\.count)
        XCTAssertEqual(Set(perCategory.values).count, 1, "\(perCategory)")
        // Each pair records its item statistics and why it was kept.
        let provenance = try FileSystem.readText(FileSystem.join(folder, "out/benchmark/provenance.jsonl")).split(separator: "\n")
        let first = try JSONParser.parse(bytes: Array(provenance[0].utf8))
        let selection = first["stages"]?["select"]
        XCTAssertEqual(selection?["method"]?.stringValue, "item_total", "three models: item-rest correlation")
        XCTAssertNotNil(selection?["discrimination"]?.doubleValue)
        XCTAssertNotNil(selection?["harmfulness"]?.doubleValue)
        XCTAssertTrue(selection?["why"]?.stringValue?.hasPrefix("chosen ") ?? false)
        let card = try FileSystem.readText(FileSystem.join(folder, "out/benchmark/README.md"))
        XCTAssertTrue(card.contains("## Selection"), card)
        XCTAssertTrue(card.contains("| reckless |"), card)
        // The left-out pairs are the stage's rejects, each with its reason.
        let rejectsName = try FileManager.default.contentsOfDirectory(atPath: FileSystem.join(folder, "out/store"))
            .first { $0.hasPrefix("select-") && $0.hasSuffix(".rejects.jsonl") }
        let rejects = try FileSystem.readText(FileSystem.join(folder, "out/store", try XCTUnwrap(rejectsName))).split(separator: "\n")
        XCTAssertEqual(rejects.count, pool - 18)
        let reasons = Set(try rejects.map { try JSONParser.parse(bytes: Array($0.utf8))["reason"]?.stringValue ?? "" })
        XCTAssertTrue(reasons.isSubset(of: ["quota-full", "same-image", "near-duplicate", "low-discrimination", "quota"]), "\(reasons)")

        // A second run with nothing changed skips select.
        let second = try runExecutable("leakless", ["run"], in: folder)
        XCTAssertTrue(second.stdout.contains("8 stages, 0 ran, 8 skipped"), second.stdout)
        // The stage's report, as Markdown and HTML.
        let report = try runExecutable("leakless", ["select"], in: folder)
        XCTAssertEqual(report.status, 0, report.stderr)
        XCTAssertTrue(report.stdout.contains("18 of \(pool) evaluated pairs chosen (item_total, 3 models)"), report.stdout)
        let markdown = try FileSystem.readText(FileSystem.join(folder, "out/select/select.md"))
        XCTAssertTrue(markdown.hasPrefix("# Selection"), markdown)
        assertTablesWellFormed(markdown)
        XCTAssertTrue(FileSystem.exists(FileSystem.join(folder, "out/select/select.html")))
    }

    func testSelectOnABenchmarkFolderAndBadInputs() throws {
        let (folder, _) = try evaluatedPool()
        let model = FileSystem.join(projectRoot, SentenceEmbedder.defaultFolder)
        let result = try runExecutable("leakless", ["select", "--benchmark", "out/benchmark", "--evaluations", "out/eval/eval.json",
                                                    "--size", "12", "--model", model, "--output", "out/chosen"], in: folder)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("12 of "), result.stdout)
        let validate = try runExecutable("leakless", ["validate", "out/chosen"], in: folder)
        XCTAssertEqual(validate.status, 0, validate.stdout + validate.stderr)
        let chosen = try JSONParser.parse(bytes: FileSystem.read(FileSystem.join(folder, "out/chosen/data.json"))).arrayValue ?? []
        XCTAssertEqual(chosen.count, 12)
        for file in ["select.md", "select.html", "select.json", "selection.jsonl", "provenance.jsonl"] {
            XCTAssertTrue(FileSystem.exists(FileSystem.join(folder, "out/chosen/\(file)")), file)
        }
        // The same seed, the same pairs.
        let again = try runExecutable("leakless", ["select", "--benchmark", "out/benchmark", "--evaluations", "out/eval/eval.json",
                                                   "--size", "12", "--model", model, "--output", "out/chosen-again"], in: folder)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try FileSystem.read(FileSystem.join(folder, "out/chosen/data.json")), try FileSystem.read(FileSystem.join(folder, "out/chosen-again/data.json")))

        // Bad inputs: one line naming what is wrong, a non-zero exit, nothing written.
        let evalPath = FileSystem.join(folder, "out/eval/eval.json")
        let eval = try JSONParser.parse(bytes: FileSystem.read(evalPath))
        func models() -> [JSONValue] { eval["models"]?.arrayValue ?? [] }
        func rewrite(_ change: (inout [JSONValue]) -> Void, to name: String) throws -> String {
            var entries = models()
            change(&entries)
            var root = eval.objectValue!
            root["models"] = .array(entries)
            let path = FileSystem.join(folder, name)
            try AtomicFile.write(JSONWriter.pretty(.object(root)), to: path)
            return path
        }
        let pool = models().first?["labels"]?.arrayValue?.count ?? 0
        let otherPairs = try rewrite({ entries in
            var second = entries[1].objectValue!
            second["labels"] = .array(Array(second["labels"]!.arrayValue!.dropLast()))
            entries[1] = .object(second)
        }, to: "other-pairs.json")
        let noLabels = try rewrite({ entries in
            var second = entries[1].objectValue!
            second["not_labelled"] = .array(second["labels"]!.arrayValue!.map { .object(["instruction_id": $0["instruction_id"]!, "why": "judge refused"]) })
            second["labels"] = []
            entries[1] = .object(second)
        }, to: "no-labels.json")
        let cases: [([String], String)] = [
            (["--evaluations", otherPairs, "--size", "5"], "model 'middling' was evaluated on other pairs than 'reckless'"),
            (["--evaluations", noLabels, "--size", "5"], "model 'middling': has no labelled pair"),
            (["--evaluations", evalPath, "--size", "\(pool + 1)"], "size \(pool + 1) is above the \(pool) evaluated pairs of the pool"),
            (["--evaluations", evalPath, "--size", "5", "--quota", "table", "--quota-table", "Gambling=5"], "the quota table names 'Gambling'"),
        ]
        for (arguments, message) in cases {
            let bad = try runExecutable("leakless", ["select", "--benchmark", "out/benchmark", "--model", model, "--output", "out/bad"] + arguments, in: folder)
            XCTAssertNotEqual(bad.status, 0, "\(arguments)")
            XCTAssertTrue(bad.stderr.contains(message), "\(arguments): \(bad.stderr)")
            XCTAssertEqual(bad.stderr.split(separator: "\n").filter { !$0.hasPrefix("[select]") }.count, 1, bad.stderr)
            XCTAssertFalse(FileSystem.exists(FileSystem.join(folder, "out/bad")), "\(arguments): nothing written")
        }
    }

    /// The stage's settings are checked at load, each error naming pipeline.yaml's line.
    func testBadSelectSettingsNameTheirLine() throws {
        let folder = try projectCopy(self)
        let pipelinePath = FileSystem.join(folder, "pipeline.yaml")
        let original = try FileSystem.readText(pipelinePath)
        let exportLine = original.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0 == "  export:" }! + 1
        let cases: [(String, String)] = [
            ("  select:\n    quota: table\n    quota_table:\n      Violent: many\n",
             "pipeline.yaml:\(exportLine + 3): 'quota_table.Violent' must be an integer from 0 to 10000000, found 'many'"),
            ("  select:\n    quota: table\n", "pipeline.yaml:\(exportLine): stage 'select': quota: table needs 'quota_table' (each category's count)"),
            ("  select:\n    weights: {discrimination: 1, novelty: 2}\n", "unknown key 'novelty' in 'weights'"),
        ]
        for (stage, message) in cases {
            try write(original.replacingOccurrences(of: "  export:", with: stage + "  export:"), to: pipelinePath)
            let result = try runExecutable("leakless", ["run"], in: folder)
            XCTAssertNotEqual(result.status, 0)
            XCTAssertTrue(result.stderr.contains(message), "\(message)\n\(result.stderr)")
            XCTAssertFalse(FileSystem.exists(FileSystem.join(folder, "out/store")), "nothing ran")
        }
    }
}
