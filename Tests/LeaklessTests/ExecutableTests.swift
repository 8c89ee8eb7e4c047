import Foundation
import XCTest

@testable import Leakless
@testable import LeaklessCore
@testable import LeaklessModels

/// One smoke test per executable: it runs, and its exit code and output are what a user sees.
final class ExecutableTests: XCTestCase {
    /// Each stage executable by hand on its golden input writes its golden output.
    func testEveryStageExecutableRunsByHandOnItsGoldenInput() throws {
        let fixtures = StageGoldenTests.fixtures
        for definition in StageRegistry.definitions where !definition.writesFolder {
            let folder = try temporaryFolder(self)
            let blobs = FileSystem.join(folder, "blobs")
            try StageGoldenTests.storeImages(into: blobs, work: folder)
            let config = FileSystem.join(folder, "config.json")
            try AtomicFile.write(JSONWriter.canonical(.object(StageGoldenTests.parameters[definition.name] ?? [:])), to: config)
            let input = StageGoldenTests.input(of: definition.name)
            let output = FileSystem.join(folder, "out.jsonl")
            let result = try runExecutable(definition.executableName, [
                "--input", input, "--output", output, "--rejects", FileSystem.join(folder, "rejects.jsonl"),
                "--config", config, "--templates", FileSystem.join(projectRoot, "stages", definition.name),
                "--blobs", blobs, "--cache", FileSystem.join(folder, "cache"),
            ], in: folder)
            XCTAssertEqual(result.status, 0, "\(definition.name): \(result.stderr)")
            let expected = try FileSystem.readText(FileSystem.join(fixtures, definition.name, "expected.jsonl"))
            let actual = try FileSystem.readText(output)
            if actual != expected {
                XCTFail("\(definition.name) by hand differs:\n" + (try StageGoldenTests.unifiedDiff(expected: expected, actual: actual, in: folder)))
            }
        }
    }

    func testTheExportExecutableWritesTheBenchmarkFolder() throws {
        let folder = try temporaryFolder(self)
        let blobs = FileSystem.join(folder, "blobs")
        try StageGoldenTests.storeImages(into: blobs, work: folder)
        let result = try runExecutable("leakless-export", [
            "--input", StageGoldenTests.input(of: "export"), "--output", "out.jsonl",
            "--rejects", "rejects.jsonl", "--blobs", blobs, "--folder", "bench", "--templates", FileSystem.join(projectRoot, "stages/export"),
        ], in: folder)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try FileSystem.read(FileSystem.join(folder, "bench/data.json")),
                       try FileSystem.read(FileSystem.join(StageGoldenTests.fixtures, "export/expected.data.json")))
    }

    func testAStageExecutableWithoutItsFilesSaysWhatItNeeds() throws {
        let result = try runExecutable("leakless-rewrite", ["--input", "x.jsonl"], in: try temporaryFolder(self))
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("give '--request FILE', or '--input', '--output' and '--rejects'"), result.stderr)
    }

    func testAByHandConfigWithABadValueIsOneLine() throws {
        let folder = try temporaryFolder(self)
        try write("{\"variants_per_query\": 9}", to: FileSystem.join(folder, "c.json"))
        let result = try runExecutable("leakless-rewrite", [
            "--input", StageGoldenTests.input(of: "rewrite"), "--output", "o.jsonl", "--rejects", "r.jsonl",
            "--config", "c.json", "--templates", FileSystem.join(projectRoot, "stages/rewrite"),
        ], in: folder)
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "leakless-rewrite: rewrite: 'variants_per_query' must be an integer from 1 to 3, found 9\n")
        XCTAssertEqual(try FileSystem.files(under: folder), ["c.json"])
    }

    func testTheDriverListsItsStagesFromTheRegistry() throws {
        let result = try runExecutable("leakless", ["stages"], in: try temporaryFolder(self))
        XCTAssertEqual(result.status, 0)
        XCTAssertEqual(result.stdout, StageTable.markdown())
        // README's table is this output.
        let readme = String(decoding: try FileSystem.read(FileSystem.join(projectRoot, "README.md")), as: UTF8.self)
        XCTAssertTrue(readme.contains(StageTable.markdown()), "README.md's stage tables are out of date: paste 'leakless stages'")
    }

    func testTheDevelopmentToolsAreTheirOwnExecutable() throws {
        let result = try runExecutable("leakless-dev", ["--help"], in: try temporaryFolder(self))
        XCTAssertEqual(result.status, 0)
        for command in ["mock-server", "bench-client", "bench-dedup"] { XCTAssertTrue(result.stdout.contains(command), command) }
        let main = try runExecutable("leakless", ["--help"], in: try temporaryFolder(self))
        XCTAssertFalse(main.stdout.contains("mock-server"))
    }

    func testTheDriverSaysItsVersion() throws {
        let result = try runExecutable("leakless", ["--version"], in: try temporaryFolder(self))
        XCTAssertEqual(result.status, 0)
        XCTAssertEqual(result.stdout, LeaklessVersion.current + "\n")
    }

    /// Installed as scripts/install lays it out (PREFIX/bin, PREFIX/share/leakless), leakless
    /// works from any folder: `init` writes the default pipeline, whose data is found in the share
    /// folder, and a missing file says where it was looked for.
    func testAnInstalledLeaklessRunsFromAnyFolder() throws {
        let prefix = try temporaryFolder(self)
        try FileSystem.createDirectory(FileSystem.join(prefix, "bin"))
        try FileSystem.createDirectory(FileSystem.join(prefix, "share/leakless"))
        for name in ["leakless"] + StageRegistry.definitions.map(\.executableName) {
            try FileManager.default.copyItem(atPath: FileSystem.join(try executablesFolder(), name), toPath: FileSystem.join(prefix, "bin", name))
        }
        for item in ["stages", "data", "pipeline.yaml"] {
            try FileManager.default.copyItem(atPath: FileSystem.join(projectRoot, item), toPath: FileSystem.join(prefix, "share/leakless", item))
        }
        let elsewhere = try temporaryFolder(self)
        func leakless(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: FileSystem.join(prefix, "bin/leakless"))
            process.arguments = arguments
            process.currentDirectoryURL = URL(fileURLWithPath: elsewhere)
            let out = Pipe(), err = Pipe()
            process.standardOutput = out
            process.standardError = err
            try process.run()
            let stdout = out.fileHandleForReading.readDataToEndOfFile(), stderr = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
        }
        XCTAssertEqual(try leakless(["init", "study"]).status, 0)
        XCTAssertEqual(try FileSystem.read(FileSystem.join(elsewhere, "study/pipeline.yaml")), try FileSystem.read(FileSystem.join(projectRoot, "pipeline.yaml")),
                       "init writes the pipeline leakless ships")
        let refused = try leakless(["init", "study"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("exists already; nothing was written"), refused.stderr)
        let run = try leakless(["run", "--pipeline", "study/pipeline.yaml"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(FileSystem.exists(FileSystem.join(elsewhere, "study/out/benchmark/data.json")))
        let pipeline = FileSystem.join(elsewhere, "study/pipeline.yaml")
        try write(try FileSystem.readText(pipeline).replacingOccurrences(of: "data/lexicon.yaml", with: "data/missing.yaml"), to: pipeline)
        let missing = try leakless(["run", "--pipeline", "study/pipeline.yaml"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("'lexicon' names data/missing.yaml, which does not exist (looked in study/data/missing.yaml, \(prefix)/share/leakless/data/missing.yaml)"), missing.stderr)
    }
}
