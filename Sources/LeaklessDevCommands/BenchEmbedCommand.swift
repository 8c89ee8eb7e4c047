import ArgumentParser
import Foundation
import Leakless
import LeaklessCommandSupport
import LeaklessCore
import LeaklessEmbedding

#if canImport(Glibc)
    import Glibc
#endif

/// What the benchmarks against sentence-transformers share: the texts' folder, the base model,
/// and the Python that runs the reference.
public struct PythonReferenceOptions: ParsableArguments {
    @Option(help: "The development benchmarks folder the texts are taken from.")
    var benchmarks: String = "../shared/benchmarks"

    @Option(help: "The base model folder.")
    var model: String = SentenceEmbedder.defaultFolder

    @Option(help: "A Python with sentence-transformers and torch, to measure them on the same texts (a path, or a name looked up on PATH).")
    var python: String?

    public init() {}
}

/// Embeds development queries with 1 and 2 threads and, given a Python with
/// sentence-transformers, the same sentences on PyTorch CPU with the same thread counts;
/// prints the figures side by side and writes them to a file.
public struct BenchEmbedCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bench-embed",
        abstract: "Benchmark the Swift sentence embeddings against sentence-transformers on PyTorch (same sentences, same threads); prints figures and writes them to a file.")

    @Option(help: "How many sentences.")
    var count: Int = 10_000

    @OptionGroup var reference: PythonReferenceOptions

    @Option(help: "The reference script.")
    var script: String = "scripts/bench_embed.py"

    @Option(help: "Where to write the figures (JSON).")
    var output: String = "bench/embeddings.json"

    public init() {}

    public func run() throws {
        try reportingErrors {
            let sentences = try Self.developmentQueries(reference.benchmarks, count: count)
            let file = FileSystem.join(NSTemporaryDirectory(), "leakless-bench-embed-\(getpid()).txt")
            try AtomicFile.write(sentences.map { $0.replacingOccurrences(of: "\n", with: " ") + "\n" }.joined(), to: file)
            defer { try? FileSystem.remove(file) }
            let tokens = try SentenceEmbedder(folder: reference.model, threads: 1).tokenizer
            let tokenCount = sentences.reduce(0) { $0 + tokens.encode($1).count }
            var figures: [String: JSONValue] = [
                "sentences": .int(Int64(sentences.count)), "tokens": .int(Int64(tokenCount)), "model": .string(reference.model),
            ]
            var lines = ["bench-embed: \(sentences.count) development sentences, \(tokenCount) tokens", "threads  leakless s  sentences/s  peak MB   torch s  sentences/s  peak MB  leakless/torch"]
            for threads in [1, 2] {
                let embedder = try SentenceEmbedder(folder: reference.model, threads: threads)
                _ = embedder.embed(Array(sentences.prefix(64)))
                let before = Double(ProcessMemory.residentKiB()) / 1024
                let started = Progress.now()
                _ = embedder.embed(sentences)
                let seconds = Progress.now() - started
                let peak = Double(ProcessMemory.peakResidentKiB()) / 1024
                var row: [String: JSONValue] = [
                    "leakless_seconds": .double(seconds.rounded(places: 3)),
                    "leakless_sentences_per_second": .double((Double(sentences.count) / seconds).rounded(places: 1)),
                    "leakless_resident_mb_before": .double(before.rounded(places: 1)), "leakless_peak_resident_mb": .double(peak.rounded(places: 1)),
                ]
                var line = "\(threads)        \(String(format1: seconds, digits: 2))      \(String(format1: Double(sentences.count) / seconds, digits: 1))       \(String(format1: peak, digits: 0))"
                if let python = reference.python {
                    let result = try Self.runPython(python, [script, reference.model, file, String(threads)])
                    let torchSeconds = result["seconds"]?.doubleValue ?? .nan
                    row["torch_seconds"] = .double(torchSeconds.rounded(places: 3))
                    row["torch_sentences_per_second"] = .double((Double(sentences.count) / torchSeconds).rounded(places: 1))
                    row["torch_peak_resident_mb"] = result["peak_rss_mb"].map { .double(($0.doubleValue ?? 0).rounded(places: 1)) } ?? .null
                    row["torch_version"] = result["torch"] ?? .null
                    row["speed_over_torch"] = .double((torchSeconds / seconds).rounded(places: 3))
                    line += "       \(String(format1: torchSeconds, digits: 2))    \(String(format1: Double(sentences.count) / torchSeconds, digits: 1))       \(String(format1: result["peak_rss_mb"]?.doubleValue ?? 0, digits: 0))      \(String(format1: torchSeconds / seconds, digits: 2))x"
                }
                figures["threads_\(threads)"] = .object(row)
                lines.append(line)
            }
            try AtomicFile.write(JSONWriter.pretty(.object(figures)), to: output)
            print((lines + ["written to \(output)"]).joined(separator: "\n"))
        }
    }

    /// Queries and descriptions of the development benchmarks, in file order, repeated to `count`.
    /// Without `descriptions`, the queries alone.
    static func developmentQueries(_ folder: String, count: Int, descriptions: Bool = true) throws -> [String] {
        var texts: [String] = []
        let vlsbench = try JSONParser.parse(bytes: try FileSystem.read(FileSystem.join(folder, "vlsbench/data.json")))
        for record in vlsbench.arrayValue ?? [] {
            if let text = record["instruction"]?.stringValue, !text.isEmpty { texts.append(text) }
            if descriptions, let text = record["image_description"]?.stringValue, !text.isEmpty { texts.append(text) }
        }
        for path in try FileSystem.files(under: FileSystem.join(folder, "mm-safetybench")).sorted() where path.hasPrefix("0") || path.hasPrefix("1") {
            let scenario = try JSONParser.parse(bytes: try FileSystem.read(FileSystem.join(folder, "mm-safetybench", path)))
            for (_, item) in (scenario.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
                if let text = item["Question"]?.stringValue { texts.append(text) }
            }
        }
        guard !texts.isEmpty else { throw ValidationError("no queries found in \(folder)") }
        return (0..<count).map { texts[$0 % texts.count] }
    }

    static func runPython(_ python: String, _ arguments: [String]) throws -> JSONValue {
        let process = Process()
        // A bare name is looked up on PATH, as a shell would.
        process.executableURL = URL(fileURLWithPath: python.contains("/") ? python : "/usr/bin/env")
        process.arguments = python.contains("/") ? arguments : [python] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last else {
            throw ValidationError("\(python) \(arguments.joined(separator: " ")) failed (exit \(process.terminationStatus))")
        }
        return try JSONParser.parse(bytes: Array(line.utf8))
    }
}
