import ArgumentParser
import Foundation
import Leakless
import LeaklessCommandSupport
import LeaklessCore
import LeaklessEmbedding

#if canImport(Glibc)
    import Glibc
#endif

/// The harm classifier's throughput: embedding plus head plus the lexicon's stacked decision over
/// many queries with 1 and 2 threads, and, given a Python with sentence-transformers, the same
/// encoder and head there (and the full base model, what embedding the queries at all costs),
/// with the same threads; prints the figures side by side and writes them to a file.
public struct BenchDetectorCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bench-detector",
        abstract: "Benchmark the harm classifier (embedding, head and stacked decision) against sentence-transformers on PyTorch running the same encoder and head; prints figures and writes them to a file.")

    @Option(help: "How many queries.")
    var count: Int = 100_000

    @Option(help: "The fine-tuned harm classifier.")
    var classifier: String = HarmClassifier.defaultPath

    @OptionGroup var reference: PythonReferenceOptions

    @Option(help: "The reference script.")
    var script: String = "scripts/bench_detector.py"

    @Option(help: "Where to write the figures (JSON).")
    var output: String = "bench/detector.json"

    public init() {}

    public func run() throws {
        try reportingErrors {
            let queries = try BenchEmbedCommand.developmentQueries(reference.benchmarks, count: count, descriptions: false)
            let file = FileSystem.join(NSTemporaryDirectory(), "leakless-bench-detector-\(getpid()).txt")
            try AtomicFile.write(queries.map { $0.replacingOccurrences(of: "\n", with: " ") + "\n" }.joined(), to: file)
            defer { try? FileSystem.remove(file) }
            let lexical = try DetectorSettings().lexical()
            let probe = try HarmClassifier(model: reference.model, path: classifier, threads: 1)
            let tokenCount = queries.reduce(0) { $0 + probe.embedder.tokenizer.encode($1).count }
            var figures: [String: JSONValue] = [
                "queries": .int(Int64(queries.count)), "tokens": .int(Int64(tokenCount)), "model": .string(reference.model), "classifier": .string(classifier),
                "encoder_layers": .int(Int64(probe.embedder.encoder.shape.layers)),
            ]
            var lines = [
                "bench-detector: \(queries.count) development queries, \(tokenCount) tokens; the classifier's encoder has \(probe.embedder.encoder.shape.layers) layers",
                "threads  leakless s  queries/s  peak MB | torch, same encoder: s  queries/s  peak MB  ratio | torch, base model: s  queries/s  ratio",
            ]
            for threads in [1, 2] {
                let harm = try HarmClassifier(model: reference.model, path: classifier, threads: threads)
                _ = harm.scores(Array(queries.prefix(64)), lexical: lexical)
                let started = Progress.now()
                let scores = harm.scores(queries, lexical: lexical)
                let seconds = Progress.now() - started
                let peak = Double(ProcessMemory.peakResidentKiB()) / 1024
                var row: [String: JSONValue] = [
                    "leakless_seconds": .double(seconds.rounded(places: 3)),
                    "leakless_queries_per_second": .double((Double(queries.count) / seconds).rounded(places: 1)),
                    "leakless_peak_resident_mb": .double(peak.rounded(places: 1)),
                    "flagged": .int(Int64(scores.filter { $0.probability >= harm.threshold }.count)),
                ]
                var line = "\(threads)        \(String(format1: seconds, digits: 2))      \(String(format1: Double(queries.count) / seconds, digits: 1))    \(String(format1: peak, digits: 0))"
                if let python = reference.python {
                    for (key, extra) in [("torch_same_encoder", [String]()), ("torch_base_model", ["--base"])] {
                        let result = try BenchEmbedCommand.runPython(python, [script, reference.model, classifier, file, String(threads)] + extra)
                        let torchSeconds = result["seconds"]?.doubleValue ?? .nan
                        row[key] = [
                            "seconds": .double(torchSeconds.rounded(places: 3)),
                            "queries_per_second": .double((Double(queries.count) / torchSeconds).rounded(places: 1)),
                            "peak_resident_mb": .double((result["peak_rss_mb"]?.doubleValue ?? 0).rounded(places: 1)),
                            "layers": result["layers"] ?? .null, "torch": result["torch"] ?? .null,
                            "leakless_speed_over_it": .double((torchSeconds / seconds).rounded(places: 3)),
                        ]
                        line += " | \(String(format1: torchSeconds, digits: 2))  \(String(format1: Double(queries.count) / torchSeconds, digits: 1))"
                        if extra.isEmpty { line += "  \(String(format1: result["peak_rss_mb"]?.doubleValue ?? 0, digits: 0))" }
                        line += "  \(String(format1: torchSeconds / seconds, digits: 2))x"
                    }
                }
                figures["threads_\(threads)"] = .object(row)
                lines.append(line)
            }
            try FileSystem.createDirectory(FileSystem.parent(of: output))
            try AtomicFile.write(JSONWriter.pretty(.object(figures)), to: output)
            print((lines + ["written to \(output)"]).joined(separator: "\n"))
        }
    }
}
