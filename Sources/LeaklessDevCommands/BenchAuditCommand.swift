import ArgumentParser
import Foundation
import Leakless
import LeaklessCommandSupport
import LeaklessCore

#if canImport(Glibc)
    import Glibc
#endif

/// Audits a JSONL benchmark of development queries with `leakless audit --judge builtin` and
/// with a plain Python script that reaches the same lexical verdicts
/// (`scripts/audit_lexical.py`), at two sizes; prints time, throughput and peak memory side by
/// side, checks the verdicts agree, and writes the figures to a file.
public struct BenchAuditCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bench-audit",
        abstract: "Benchmark the lexical audit against a plain Python script with the same verdicts (time, records/s, peak memory at two sizes); prints figures and writes them to a file.")

    @Option(help: "The development benchmarks folder the queries are taken from.")
    var benchmarks: String = "../shared/benchmarks"

    @Option(help: "Records in the larger run (the smaller has a quarter).")
    var records: Int = 100_000

    @Option(help: "The Python interpreter.")
    var python: String = "/usr/bin/python3"

    @Option(help: "The anchor script.")
    var script: String = "scripts/audit_lexical.py"

    @Option(help: "The lexicon both use.")
    var lexicon: String = Lexicon.defaultPath

    @Option(help: "Where to write the figures (JSON).")
    var output: String = "bench/audit.json"

    public init() {}

    struct Measured {
        let seconds: Double
        let peakMB: Double
    }

    /// Runs a program, waits for it, and returns its wall time and peak resident memory.
    static func measure(_ program: String, _ arguments: [String]) throws -> Measured {
        var pid: pid_t = 0
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var actions: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let started = Progress.now()
        let spawned = posix_spawn(&pid, program, &actions, nil, argv, environ)
        guard spawned == 0 else { throw ValidationError("cannot start \(program): \(String(cString: strerror(spawned)))") }
        // The peak is the child's own high-water mark (VmHWM), read while it runs: its rusage
        // would also count this process's memory, which a spawned child inherits until exec.
        var status: Int32 = 0
        var peakKiB = 0
        while true {
            if let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
                let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
            {
                peakKiB = max(peakKiB, kib)
            }
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR { throw ValidationError("lost \(program): \(String(cString: strerror(errno)))") }
            usleep(2_000)
        }
        let seconds = Progress.now() - started
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw ValidationError("\(program) \(arguments.joined(separator: " ")) failed (status \(status))")
        }
        return Measured(seconds: seconds, peakMB: Double(peakKiB) / 1024)
    }

    public func run() throws {
        try reportingErrors {
            let texts = try Self.queriesWithDescriptions(benchmarks)
            let work = FileSystem.join(NSTemporaryDirectory(), "leakless-bench-audit-\(getpid())")
            try FileSystem.createDirectory(work)
            defer { try? FileManager.default.removeItem(atPath: work) }
            let leakless = FileSystem.join(FileSystem.parent(of: CommandLine.arguments[0].hasPrefix("/") ? CommandLine.arguments[0]
                : FileSystem.join(FileManager.default.currentDirectoryPath, CommandLine.arguments[0])), "leakless")
            var figures: [String: JSONValue] = ["python": .string(python), "script": .string(script)]
            var lines = ["bench-audit: lexical audit of development queries with their descriptions",
                         "records   leakless s  records/s  peak MB   python s  records/s  peak MB   speed  verdicts agree"]
            for size in [records / 4, records] {
                let input = FileSystem.join(work, "bench-\(size).jsonl")
                try AtomicFile.write((0..<size).map { index in
                    let (query, description) = texts[index % texts.count]
                    return JSONWriter.canonical(["query": .string(query), "description": .string(description)]) + "\n"
                }.joined(), to: input)
                let folder = FileSystem.join(work, "audit-\(size)")
                let ours = try Self.measure(leakless, [
                    "audit", input, "--format", "jsonl", "--map", "description=description", "--judge", "builtin", "--lexicon", projectFile(lexicon), "--output", folder,
                ])
                let theirsOutput = FileSystem.join(work, "python-\(size).jsonl")
                let theirs = try Self.measure(python, [script, projectFile(lexicon), input, theirsOutput])
                // Verdicts compared record by record.
                let ourLines = try FileSystem.readText(FileSystem.join(folder, "audit.jsonl")).split(separator: "\n")
                let theirLines = try FileSystem.readText(theirsOutput).split(separator: "\n")
                var agree = 0
                for (a, b) in zip(ourLines, theirLines) {
                    let x = try JSONParser.parse(bytes: Array(a.utf8)), y = try JSONParser.parse(bytes: Array(b.utf8))
                    if x["verdict"] == y["verdict"] { agree += 1 }
                }
                let agreement = Double(agree) / Double(max(1, max(ourLines.count, theirLines.count)))
                figures["records_\(size)"] = .object([
                    "leakless_seconds": .double(ours.seconds.rounded(places: 3)), "leakless_peak_mb": .double(ours.peakMB.rounded(places: 1)),
                    "leakless_records_per_second": .double((Double(size) / ours.seconds).rounded(places: 0)),
                    "python_seconds": .double(theirs.seconds.rounded(places: 3)), "python_peak_mb": .double(theirs.peakMB.rounded(places: 1)),
                    "python_records_per_second": .double((Double(size) / theirs.seconds).rounded(places: 0)),
                    "speed_over_python": .double((theirs.seconds / ours.seconds).rounded(places: 2)),
                    "verdict_agreement": .double(agreement.rounded(places: 4)),
                ])
                lines.append([String(size), String(format1: ours.seconds, digits: 2), String(format1: Double(size) / ours.seconds, digits: 0),
                              String(format1: ours.peakMB, digits: 0), String(format1: theirs.seconds, digits: 2),
                              String(format1: Double(size) / theirs.seconds, digits: 0), String(format1: theirs.peakMB, digits: 0),
                              String(format1: theirs.seconds / ours.seconds, digits: 2) + "x", String(format1: agreement * 100, digits: 2) + "%"]
                    .enumerated().map { $0.element.padding(toLength: [10, 12, 11, 10, 11, 11, 10, 7, 8][$0.offset], withPad: " ", startingAt: 0) }
                    .joined())
            }
            try FileSystem.createDirectory(FileSystem.parent(of: output))
            try AtomicFile.write(JSONWriter.pretty(.object(figures)), to: output)
            print((lines + ["written to \(output)"]).joined(separator: "\n"))
        }
    }

    /// The development queries with their image descriptions (VLSBench) or key phrases
    /// (MM-SafetyBench), in file order.
    static func queriesWithDescriptions(_ folder: String) throws -> [(String, String)] {
        var pairs: [(String, String)] = []
        let vlsbench = try JSONParser.parse(bytes: try FileSystem.read(FileSystem.join(folder, "vlsbench/data.json")))
        for record in vlsbench.arrayValue ?? [] {
            if let query = record["instruction"]?.stringValue { pairs.append((query, record["image_description"]?.stringValue ?? "")) }
        }
        for path in try FileSystem.files(under: FileSystem.join(folder, "mm-safetybench")).sorted() where path.hasSuffix(".json") {
            let scenario = try JSONParser.parse(bytes: try FileSystem.read(FileSystem.join(folder, "mm-safetybench", path)))
            for (_, item) in (scenario.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
                if let query = item["Question"]?.stringValue { pairs.append((query, item["Key Phrase"]?.stringValue ?? "")) }
            }
        }
        guard !pairs.isEmpty else { throw ValidationError("no queries found in \(folder)") }
        return pairs
    }
}
