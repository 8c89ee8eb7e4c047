import XCTest

@testable import Leakless
@testable import LeaklessCore

/// Runs the real executables on a copy of the project's pipeline.
final class DriverTests: XCTestCase {
    func testDefaultPipelineEndToEndThenSkipsThenRerunsFromAnEditedStage() throws {
        let folder = try projectCopy(self)
        let first = try runExecutable("leakless", ["run"], in: folder)
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("7 stages, 7 ran, 0 skipped"), first.stdout)
        XCTAssertTrue(first.stdout.contains("Benchmark: out/benchmark/"), first.stdout)

        // The export is in VLSBench's layout and validates.
        let report = try BenchmarkValidator.validate(folder: FileSystem.join(folder, "out/benchmark"))
        XCTAssertGreaterThan(report.pairs, 100)
        let data = try JSONParser.parse(bytes: try FileSystem.read(FileSystem.join(folder, "out/benchmark/data.json")))
        XCTAssertEqual(Set(data.arrayValue![0].objectValue!.keys), Set(VLSBenchExporter.fields))
        // No exported instruction leaks by the builtin detector's own measure.
        let detector = LexicalDetector(lexicon: try Lexicon.load(path: FileSystem.join(folder, "data/lexicon.yaml")), minContentWords: 2)
        XCTAssertTrue(data.arrayValue!.allSatisfy { detector.judge($0["instruction"]!.stringValue!).verdict == .clean })

        // Beside it: each pair's provenance, back to its taxonomy element, and the dataset card.
        let provenance = try FileSystem.readText(FileSystem.join(folder, "out/benchmark/provenance.jsonl")).split(separator: "\n")
        XCTAssertEqual(provenance.count, report.pairs)
        let line = try JSONParser.parse(bytes: Array(provenance[0].utf8)).objectValue!
        XCTAssertEqual(line["lineage"]?.arrayValue?.count, 6, "kept pair, pair, detected query, rewritten query, seed, element")
        XCTAssertEqual(line["stages"]?.objectValue?["image"]?.objectValue?["method"], "retrieval")
        XCTAssertEqual(line["stages"]?.objectValue?["image"]?.objectValue?["collection"], "openclipart")
        XCTAssertNotNil(line["stages"]?.objectValue?["image"]?.objectValue?["license"])
        // Every image shows its element: a matching clip-art picture, or its key phrase drawn.
        let sources = Set(data.arrayValue!.compactMap { $0["source"]?.stringValue })
        XCTAssertEqual(sources, ["openclipart", "typography"])
        XCTAssertTrue(first.stdout.contains("images by source: openclipart "), first.stdout)
        XCTAssertEqual(line["taxonomy"], "vlsbench-1.0/leakless-1")
        let card = try FileSystem.readText(FileSystem.join(folder, "out/benchmark/README.md"))
        assertTablesWellFormed(card)
        // The Hub reads the card's YAML header.
        XCTAssertTrue(card.hasPrefix("---\nlicense: other\n"), card)
        XCTAssertTrue(card.contains("size_categories:\n- n<1K\n"), card)
        XCTAssertTrue(card.contains("  - split: test\n    path: data.json\n---\n"), card)
        XCTAssertTrue(card.contains("| openclipart | Public domain (Creative Commons Public Domain Dedication)"), card)
        XCTAssertTrue(card.contains("## Where the images come from"), card)
        XCTAssertTrue(card.contains("| typography | "), card)
        XCTAssertTrue(card.contains("\(report.pairs) pairs."), card)
        XCTAssertTrue(card.contains("| extract | 76 | 228 | - |"), card)
        XCTAssertTrue(card.contains("@inproceedings{hu-etal-2025-vlsbench"), card)

        // The report shows the same count, with a thumbnail for every image.
        let reportRun = try runExecutable("leakless", ["report"], in: folder)
        XCTAssertEqual(reportRun.status, 0, reportRun.stderr)
        let html = try FileSystem.readText(FileSystem.join(folder, "out/report/index.html"))
        XCTAssertTrue(html.contains("<b id=\"pair-count\">\(report.pairs)</b>"))
        XCTAssertEqual(html.components(separatedBy: "data-verdict=\"exported\"><img").count - 1, report.pairs)
        XCTAssertTrue(html.contains("<section class=\"stage\" id=\"rejects-dedup\">"))
        let thumbnails = Set(html.components(separatedBy: "src=\"thumbs/").dropFirst().map { String($0.prefix { $0 != "\"" }) })
        XCTAssertFalse(thumbnails.isEmpty)
        for name in thumbnails { XCTAssertTrue(FileSystem.exists(FileSystem.join(folder, "out/report/thumbs", name)), name) }
        XCTAssertFalse(html.contains("src=\"http"), "nothing is loaded from elsewhere")

        let second = try runExecutable("leakless", ["run"], in: folder)
        XCTAssertTrue(second.stdout.contains("7 stages, 0 ran, 7 skipped"), second.stdout)

        // The same pairs as a Hugging Face imagefolder.
        let pipelinePath = FileSystem.join(folder, "pipeline.yaml")
        let original = try FileSystem.readText(pipelinePath)
        try write(original.replacingOccurrences(of: "    format: vlsbench", with: "    format: imagefolder"), to: pipelinePath)
        let folderRun = try runExecutable("leakless", ["run"], in: folder)
        XCTAssertTrue(folderRun.stdout.contains("7 stages, 1 ran, 6 skipped"), folderRun.stdout + folderRun.stderr)
        XCTAssertTrue(folderRun.stdout.contains("Benchmark: out/benchmark/ (metadata.jsonl, imgs/)"), folderRun.stdout)
        XCTAssertTrue(folderRun.stdout.contains("total             \(report.pairs)"), folderRun.stdout)
        XCTAssertFalse(FileSystem.exists(FileSystem.join(folder, "out/benchmark/data.json")))
        XCTAssertEqual(try BenchmarkValidator.validate(folder: FileSystem.join(folder, "out/benchmark")).pairs, report.pairs)
        let metadata = try FileSystem.readText(FileSystem.join(folder, "out/benchmark/metadata.jsonl")).split(separator: "\n")
        XCTAssertEqual(try JSONParser.parse(bytes: Array(metadata[0].utf8)).objectValue?["file_name"], "imgs/0.png")
        try write(original, to: pipelinePath)
        let restored = try runExecutable("leakless", ["run"], in: folder)
        XCTAssertTrue(restored.stdout.contains("7 stages, 0 ran, 7 skipped"), "the vlsbench export is still cached: \(restored.stdout)")

        // Editing the filter's parameter reruns filter, dedup and export only.
        let pipeline = FileSystem.join(folder, "pipeline.yaml")
        try write(try FileSystem.readText(pipeline).replacingOccurrences(of: "  filter:\n    backend: builtin\n", with: "  filter:\n    backend: builtin\n    min_description_words: 5\n"), to: pipeline)
        let third = try runExecutable("leakless", ["run"], in: folder)
        XCTAssertTrue(third.stdout.contains("7 stages, 3 ran, 4 skipped"), third.stdout)
        let ran = third.stdout.split(separator: "\n").filter { $0.contains(" ran ") }.map { String($0.split(separator: " ")[0]) }
        XCTAssertEqual(ran, ["filter", "dedup", "export"])

        // Editing a template reruns that stage and those after it.
        let templates = FileSystem.join(folder, "stages/rewrite/softening.yaml")
        try write(try FileSystem.readText(templates) + "kill: [handle, deal with]\n", to: templates)
        let fourth = try runExecutable("leakless", ["run"], in: folder)
        XCTAssertTrue(fourth.stdout.contains("7 stages, 6 ran, 1 skipped"), fourth.stdout)

        let status = try runExecutable("leakless", ["status"], in: folder)
        XCTAssertEqual(status.status, 0)
        XCTAssertEqual(status.stdout.components(separatedBy: "cached").count - 1, 7, status.stdout)

        // --from reruns a stage and those after it, --only one stage.
        XCTAssertTrue(try runExecutable("leakless", ["run", "--from", "dedup"], in: folder).stdout.contains("2 ran, 5 skipped"))
        let only = try runExecutable("leakless", ["run", "--only", "detect", "--force"], in: folder)
        XCTAssertTrue(only.stdout.contains("1 ran, 6 skipped"), only.stdout + only.stderr)
    }

    func testABadPipelineIsOneLineWithTheLine() throws {
        let folder = try projectCopy(self)
        let pipeline = FileSystem.join(folder, "pipeline.yaml")
        let original = try FileSystem.readText(pipeline)
        try write(original.replacingOccurrences(of: "fallback: typography", with: "fallback: sometimes"), to: pipeline)
        let result = try runExecutable("leakless", ["run"], in: folder)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.hasPrefix("leakless: pipeline.yaml:\(Self.line(of: "fallback: typography", in: original)): 'fallback' must be one of 'typography', 'typography_over_match', 'reject', found 'sometimes'"), result.stderr)
        XCTAssertFalse(FileSystem.exists(FileSystem.join(folder, "out")))
    }

    func testAStageExecutableOnBadInputNamesTheLineAndLeavesNothing() throws {
        let folder = try projectCopy(self)
        try write("{\"kind\":\"query\",\"query\":\"How do I store this?\",\"element\":{\"name\":\"x\",\"terms\":[],\"refer\":[\"this\"]},\"parents\":[]}\n{\"kind\":\"query\"\n", to: FileSystem.join(folder, "in.jsonl"))
        try write("{}", to: FileSystem.join(folder, "detect.json"))
        let result = try runExecutable("leakless-detect", [
            "--input", "in.jsonl", "--output", "out.jsonl", "--rejects", "rejects.jsonl", "--config", "detect.json",
        ], in: folder)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.hasPrefix("leakless-detect: in.jsonl:2: invalid JSON"), result.stderr)
        XCTAssertFalse(FileSystem.exists(FileSystem.join(folder, "out.jsonl")))
        XCTAssertFalse(FileSystem.exists(FileSystem.join(folder, "rejects.jsonl")))
    }

    /// Every value out of its type or range is an error when pipeline.yaml loads, at its line, with
    /// the value as written: never null, never found after paid stages.
    func testABadValueOfAnyStageFailsBeforeTheFirstStageRuns() throws {
        // Each error names the line of the value, of the stage (a missing folder) or of the unknown key.
        let cases: [(from: String, to: String, expected: String, at: String?)] = [
            ("queries_per_element: 3", "queries_per_element: 300", "pipeline.yaml:LINE: 'queries_per_element' must be an integer from 1 to 20, found integer 300", nil),
            ("format: vlsbench", "format: csv", "pipeline.yaml:LINE: 'format' must be one of 'vlsbench', 'imagefolder', found 'csv'", nil),
            ("max_queries_per_image: 12", "max_queries_per_image: 0", "pipeline.yaml:LINE: 'max_queries_per_image' must be an integer from 1 to 1000000, found integer 0", nil),
            ("min_content_words: 2", "min_content_words: 2.5", "pipeline.yaml:LINE: 'min_content_words' must be an integer from 0 to 20, found number 2.5", nil),
            ("clipart: /usr/share/openclipart", "clipart: /nonexistent/clipart",
             "pipeline.yaml:LINE: stage 'image': 'clipart' names /nonexistent/clipart, which is not a folder (looked in /nonexistent/clipart); it is the Open Clip Art Library (Debian openclipart-svg and openclipart-png); empty: photos only", "  image:"),
            ("kind: builtin", "kind: builtin\n    max_in_flight: 0", "pipeline.yaml:LINE: unknown key 'max_in_flight' in backend 'builtin' of kind 'builtin' (expected one of: kind)", "max_in_flight"),
        ]
        for (from, to, expected, at) in cases {
            let folder = try projectCopy(self)
            let pipeline = FileSystem.join(folder, "pipeline.yaml")
            let text = try FileSystem.readText(pipeline)
            XCTAssertTrue(text.contains(from), from)
            try write(text.replacingOccurrences(of: from, with: to), to: pipeline)
            let result = try runExecutable("leakless", ["run"], in: folder)
            XCTAssertEqual(result.status, 1, to)
            let line = Self.line(of: at ?? to, in: text.replacingOccurrences(of: from, with: to))
            XCTAssertEqual(result.stderr, "leakless: " + expected.replacingOccurrences(of: "pipeline.yaml:LINE:", with: "pipeline.yaml:\(line):") + "\n")
            XCTAssertFalse(FileSystem.exists(FileSystem.join(folder, "out/store")), "no stage ran for \(to)")
        }
    }

    /// A pipeline's `backends:` with a chat backend `gpt` on a port nothing listens on, its sixth
    /// line being `setting`.
    static func unreachableChat(_ setting: String) -> String {
        "backends:\n  gpt:\n    kind: openai-chat\n    base_url: http://127.0.0.1:9/v1\n    model: m\n    \(setting)\n"
    }

    func testABackendSettingOutOfRangeIsAnErrorAtItsLine() throws {
        let folder = try projectCopy(self)
        try write(Self.unreachableChat("json_mode: bogus") + "stages:\n  extract:\n    backend: gpt\n", to: FileSystem.join(folder, "p.yaml"))
        let result = try runExecutable("leakless", ["run", "--pipeline", "p.yaml"], in: folder)
        XCTAssertEqual(result.stderr, "leakless: p.yaml:6: 'json_mode' must be one of 'auto', 'json_schema', 'json_object', 'text', found 'bogus'\n")
        for (setting, expected) in [("max_in_flight: 0", "an integer from 1 to 1024, found integer 0"), ("max_retries: 1000", "an integer from 0 to 100, found integer 1000")] {
            try write(try FileSystem.readText(FileSystem.join(folder, "p.yaml")).replacingOccurrences(of: "json_mode: bogus", with: setting)
                        .replacingOccurrences(of: "max_in_flight: 0", with: setting), to: FileSystem.join(folder, "q.yaml"))
            let run = try runExecutable("leakless", ["run", "--pipeline", "q.yaml"], in: folder)
            XCTAssertEqual(run.stderr, "leakless: q.yaml:6: '\(setting.split(separator: ":")[0])' must be \(expected)\n")
        }
    }

    func testAMissingAPIKeyIsReportedBeforeTheFirstStage() throws {
        let folder = try projectCopy(self)
        try write(Self.unreachableChat("api_key_env: LEAKLESS_TEST_UNSET_KEY") + """
          builtin:
            kind: builtin
        stages:
          extract:
            backend: builtin
          rewrite:
            backend: gpt

        """, to: FileSystem.join(folder, "p.yaml"))
        let result = try runExecutable("leakless", ["run", "--pipeline", "p.yaml"], in: folder)
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "leakless: p.yaml:12: stage 'rewrite' uses backend 'gpt', whose API key variable LEAKLESS_TEST_UNSET_KEY is not set\n")
        XCTAssertFalse(FileSystem.exists(FileSystem.join(folder, "out/store")), "not even the builtin extract ran")
    }

    /// A stage never reads an input whose writer did not finish (its stats, the completion
    /// marker, missing): `--only` refuses instead of running on part of the records.
    func testOnlyRefusesAnInputWhoseStageDidNotFinish() throws {
        let folder = try projectCopy(self)
        XCTAssertEqual(try runExecutable("leakless", ["run", "--only", "extract"], in: folder).status, 0)
        XCTAssertEqual(try runExecutable("leakless", ["run", "--only", "rewrite"], in: folder).status, 0)
        // As after Ctrl-C: the output of what finished is there, the marker is not.
        try FileSystem.remove(try storeFile(folder, "rewrite-", ".stats.json"))
        let result = try runExecutable("leakless", ["run", "--only", "detect"], in: folder)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("stage 'detect' needs the output of the stage before it, which did not finish"), result.stderr)
        XCTAssertNil(try storeFileIfAny(folder, "detect-", ".jsonl"))
    }

    func testTwoRunsOnOneWorkdirAreRefusedWhileTheFirstHoldsTheLock() throws {
        let folder = try projectCopy(self)
        try FileSystem.createDirectory(FileSystem.join(folder, "out"))
        let lock = try WorkdirLock(workdir: FileSystem.join(folder, "out"))
        let result = try runExecutable("leakless", ["run"], in: folder)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("is in use by another leakless run (pid \(ProcessInfo.processInfo.processIdentifier))"), result.stderr)
        withExtendedLifetime(lock) {}
    }

    func testStaleTemporaryFilesOfDeadProcessesAreRemoved() throws {
        let folder = try projectCopy(self)
        let store = FileSystem.join(folder, "out/store")
        // pid 2^22 + 1 is above Linux's pid_max: no such process.
        let dead = FileSystem.join(store, ".extract-abc.jsonl.tmp-4194305-1")
        let live = FileSystem.join(store, ".extract-abc.jsonl.tmp-\(ProcessInfo.processInfo.processIdentifier)-1")
        try write("partial", to: dead)
        try write("in progress", to: live)
        XCTAssertEqual(try runExecutable("leakless", ["run", "--only", "extract"], in: folder).status, 0)
        XCTAssertFalse(FileSystem.exists(dead))
        XCTAssertTrue(FileSystem.exists(live), "a running process's file is left alone")
    }

    /// `status` tells a stage that never ran from one whose inputs changed and one that stopped.
    func testStatusNamesEachStagesState() throws {
        let folder = try projectCopy(self)
        let fresh = try runExecutable("leakless", ["status"], in: folder)
        XCTAssertEqual(fresh.stdout.components(separatedBy: "not run").count - 1, 7, fresh.stdout)
        XCTAssertFalse(fresh.stdout.contains("stale"))
        XCTAssertEqual(try runExecutable("leakless", ["run", "--only", "extract"], in: folder).status, 0)
        XCTAssertEqual(try runExecutable("leakless", ["run", "--only", "rewrite"], in: folder).status, 0)
        try FileSystem.remove(try storeFile(folder, "rewrite-", ".stats.json"))
        let pipeline = FileSystem.join(folder, "pipeline.yaml")
        try write(try FileSystem.readText(pipeline).replacingOccurrences(of: "seed: 1", with: "seed: 2"), to: pipeline)
        let status = try runExecutable("leakless", ["status"], in: folder).stdout
        XCTAssertTrue(status.contains("stale (inputs or settings changed)"), status)
        try write(try FileSystem.readText(pipeline).replacingOccurrences(of: "seed: 2", with: "seed: 1"), to: pipeline)
        let stopped = try runExecutable("leakless", ["status"], in: folder).stdout
        XCTAssertTrue(stopped.contains("incomplete (stopped; run again to resume)"), stopped)
    }

    /// The number of the first line of `text` that holds `needle`.
    static func line(of needle: String, in text: String) -> Int {
        (text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains(needle) } ?? -1) + 1
    }
}
