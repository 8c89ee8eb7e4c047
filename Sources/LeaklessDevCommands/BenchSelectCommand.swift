import ArgumentParser
import Foundation
import Leakless
import LeaklessCommandSupport
import LeaklessCore

#if canImport(Glibc)
    import Glibc
#endif

/// Fits the item response model and selects a subset on a synthetic pool of known parameters
/// (the issue's size: 50 models x 100,000 pairs), and, given a Python with girth, fits girth's
/// two-parameter logistic model on a part of the same matrix beside leakless's fit of that part;
/// prints the figures and writes them to a file.
public struct BenchSelectCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bench-select",
        abstract: "Benchmark the selection (item response model fit, lazy greedy choice, report) on a synthetic pool; with --python, girth's 2PL fit side by side on part of it.")

    @Option(help: "Models (rows of the response matrix).")
    var models: Int = 50

    @Option(help: "Pairs in the pool.")
    var pairs: Int = 100_000

    @Option(help: "Pairs to select.")
    var size: Int = 2_000

    @Option(help: "Embedding dimension of the synthetic pairs (all-MiniLM-L6-v2 has 384).")
    var dimension: Int = 384

    @Option(help: "A Python with girth (pip install girth), to fit the same matrix with it (a path, or a name looked up on PATH).")
    var python: String?

    @Option(help: "Pairs of the pool girth fits (girth fits item by item in Python, slower than linearly: 100 pairs take 3 s, 200 take 15 s).")
    var anchorPairs: Int = 500

    @Option(help: "The reference script.")
    var script: String = "scripts/bench_select.py"

    @Option(help: "Where to write the figures (JSON; a Markdown table beside it).")
    var output: String = "bench/select.json"

    public init() {}

    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let started = Progress.now()
        try body()
        return Progress.now() - started
    }

    public func run() throws {
        try reportingErrors {
            let cores = ProcessInfo.processInfo.activeProcessorCount
            var pool: SyntheticSelectionPool!
            let generating = Self.seconds { pool = SyntheticSelectionPool(models: models, items: pairs, seed: 2026, embeddingDimension: dimension) }
            let baseline = ProcessMemory.peakResidentKiB()
            var settings = SelectionSettings(size: size)
            settings.method = .irt
            var selection = try SubsetSelection(candidates: pool.candidates, responses: pool.responses, settings: settings)
            let progress = Progress(label: "bench-select")
            let fitting = Self.seconds { selection.estimate { progress.tick($0) } }
            let choosing = Self.seconds { selection.choose() }
            var report: SelectionReport!
            let reporting = Self.seconds { report = SelectionReport(selection, quotaRule: "proportional") }
            let peak = ProcessMemory.peakResidentKiB()
            guard let fitted = selection.model else { throw ValidationError("the item response model was not fitted") }
            let correlation = pearson(fitted.discrimination, pool.discrimination)
            var figures: [String: JSONValue] = [
                "models": .int(Int64(models)), "pairs": .int(Int64(pairs)), "size": .int(Int64(size)), "dimension": .int(Int64(dimension)), "cores": .int(Int64(cores)),
                "generate_seconds": .double(generating.rounded(places: 2)),
                "fit_seconds": .double(fitting.rounded(places: 2)), "em_iterations": .int(Int64(fitted.iterations)), "converged": .bool(fitted.converged),
                "select_seconds": .double(choosing.rounded(places: 2)), "report_seconds": .double(reporting.rounded(places: 2)),
                "peak_rss_mb": .double((Double(peak) / 1024).rounded(places: 1)),
                "peak_rss_mb_over_pool": .double((Double(peak - baseline) / 1024).rounded(places: 1)),
                "discrimination_correlation": .double(correlation.rounded(places: 3)),
                "difficulty_correlation": .double(pearson(fitted.difficulty, pool.difficulty).rounded(places: 3)),
                "kendall_tau": .double(report.kendall.rounded(places: 4)), "random_subset_kendall_tau": .double(report.randomKendall.rounded(places: 4)),
            ]
            var lines = [
                "bench-select: \(models) models x \(pairs) pairs, select \(size), \(cores) cores",
                "leakless: fit \(format(fitting)) s (\(fitted.iterations) EM steps\(fitted.converged ? "" : ", not converged")), select \(format(choosing)) s, report \(format(reporting)) s; peak \(format(Double(peak) / 1024, 0)) MB (the synthetic pool itself \(format(Double(baseline) / 1024, 0)) MB)",
                "fitted discrimination against the truth: r = \(format(correlation, 3)); subset ranking against the pool: tau \(format(report.kendall, 3)) (random subsets \(format(report.randomKendall, 3)))",
            ]
            if let python {
                let items = min(anchorPairs, pairs)
                let part = Array(0..<items)
                let matrix = pool.responses.restricted(to: part)
                var bytes = [UInt8](repeating: 0, count: items * models)
                for item in 0..<items { for model in 0..<models { bytes[item * models + model] = UInt8(matrix[model, item]) } }
                let file = FileSystem.join(NSTemporaryDirectory(), "leakless-bench-select-\(getpid()).u8")
                try AtomicFile.write(bytes, to: file)
                defer { try? FileSystem.remove(file) }
                var ours: TwoParameterLogistic!
                let oursSeconds = Self.seconds { ours = TwoParameterLogistic.fit(matrix) }
                let girth = try BenchEmbedCommand.runPython(python, [script, file, "\(items)", "\(models)"])
                let girthSeconds = girth["seconds"]?.doubleValue ?? 0
                let girthDiscrimination = girth["discrimination"]?.arrayValue?.compactMap(\.doubleValue) ?? []
                let truth = Array(pool.discrimination.prefix(items))
                let oursCorrelation = pearson(ours.discrimination, truth), girthCorrelation = pearson(girthDiscrimination, truth)
                figures["anchor"] = [
                    "tool": "girth twopl_mml", "pairs": .int(Int64(items)),
                    "leakless_seconds": .double(oursSeconds.rounded(places: 3)), "girth_seconds": .double(girthSeconds.rounded(places: 2)),
                    "leakless_discrimination_correlation": .double(oursCorrelation.rounded(places: 3)),
                    "girth_discrimination_correlation": .double(girthCorrelation.rounded(places: 3)),
                    "fits_correlation": .double(pearson(ours.discrimination, girthDiscrimination).rounded(places: 3)),
                    "girth_peak_rss_mb": .double(girth["peak_rss_mb"]?.doubleValue ?? 0),
                ]
                lines.append("same \(models) x \(items) matrix: leakless \(format(oursSeconds, 2)) s (r = \(format(oursCorrelation, 3))), girth \(format(girthSeconds, 1)) s (r = \(format(girthCorrelation, 3))): \(format(girthSeconds / max(oursSeconds, 1e-9), 0))x")
            }
            for line in lines { print(line) }
            try FileSystem.createDirectory(FileSystem.parent(of: output))
            try AtomicFile.write(JSONWriter.pretty(.object(figures)), to: output)
            let markdown = output.hasSuffix(".json") ? String(output.dropLast(5)) + ".md" : output + ".md"
            try AtomicFile.write("# bench-select\n\n" + lines.map { "- " + $0 }.joined(separator: "\n") + "\n", to: markdown)
            print("written to \(output) and \(markdown)")
        }
    }

    func format(_ value: Double, _ digits: Int = 1) -> String { String(format1: value, digits: digits) }

    func pearson(_ x: [Double], _ y: [Double]) -> Double {
        ItemTotalStatistics.pearson(Array(x.prefix(y.count)), Array(y.prefix(x.count))) ?? 0
    }
}
