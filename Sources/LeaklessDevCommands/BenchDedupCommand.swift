import ArgumentParser
import Foundation
import Leakless
import LeaklessCommandSupport
import LeaklessCore
import LeaklessImaging

private func rounded3(_ value: Double) -> Double { value.rounded(places: 3) }

public struct BenchDedupCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bench-dedup",
        abstract: "Benchmark perceptual-hash dedup on a labelled corpus (../shared/bench) and on a million synthetic hashes; prints figures and writes them to a file.")

    @Argument(help: "The corpus folder (image files and ground_truth.jsonl).")
    var corpus: String

    @Option(help: "Use only the first N files (by name).")
    var limit: Int?

    @Option(help: "Timed runs of each measurement; the median is reported.")
    var runs: Int = 3

    @Option(help: "Synthetic hashes to group.")
    var synthetic: Int = 1_000_000

    @Option(help: "A Python with imagehash and imagededup, to measure the reference tools on the same files.")
    var python: String?

    @Option(help: "The folder of the reference scripts (bench_imagehash.py, bench_imagededup.py).")
    var scripts: String = "../shared/bench"

    @Option(help: "A compiled decode_floor (../shared/bench/decode_floor.c), run with -s 8 on the same files.")
    var floor: String?

    @Option(help: "Where to write the figures (JSON).")
    var output: String = "bench/dedup.json"

    public init() {}

    public func run() throws {
        try reportingErrors {
            var figures: [String: JSONValue] = [:]
            let rule = NearDuplicateRule.standard
            // Grouping first, in a fresh process, so the peak resident memory is the grouping's.
            let grouping = DedupBenchmark.syntheticGrouping(count: synthetic, rule: rule, threads: 2)
            let peak = ProcessMemory.peakResidentKiB()
            figures["grouping"] = .object([
                "hashes": .int(Int64(grouping.hashes)), "planted_near_copies": .int(Int64(grouping.planted)),
                "planted_found": .int(Int64(grouping.plantedFound)), "pairs": .int(Int64(grouping.pairs)),
                "kept": .int(Int64(grouping.kept)), "search_seconds": .double(rounded3(grouping.searchSeconds)),
                "cluster_seconds": .double(rounded3(grouping.clusterSeconds)),
                "total_seconds": .double(rounded3(grouping.searchSeconds + grouping.clusterSeconds)),
                "peak_resident_mb": .double(rounded3(Double(peak) / 1024)),
            ])
            print("grouping \(grouping.hashes) synthetic hashes (\(grouping.planted) planted near copies, \(grouping.plantedFound) found): \(String(format1: grouping.searchSeconds + grouping.clusterSeconds, digits: 2)) s, peak resident \(String(format1: Double(peak) / 1024, digits: 1)) MB")

            let set = try DedupBenchmark.Corpus(folder: corpus, limit: limit)
            let paths = set.paths
            let jpegPaths = paths.filter { $0.hasSuffix(".jpg") || $0.hasSuffix(".jpeg") }
            var throughput: [String: JSONValue] = [:]
            func measure(_ name: String, files: [String], _ body: () throws -> Void) rethrows -> Double {
                let seconds = try DedupBenchmark.median(runs: runs, body)
                let rate = Double(files.count) / seconds
                throughput[name] = .object(["files": .int(Int64(files.count)), "seconds": .double(rounded3(seconds)), "files_per_second": .double(rounded3(rate))])
                print("\(name): \(files.count) files in \(String(format1: seconds, digits: 2)) s, \(String(format1: rate, digits: 1)) files/s")
                return rate
            }
            var fast: [Result<ImageFingerprint, ImageError>] = [], compatible: [Result<ImageFingerprint, ImageError>] = []
            let one = measure("leakless_fast_1_core", files: paths) { fast = ImageFileHasher(mode: .fast, threads: 1).fingerprint(paths: paths) }
            let two = measure("leakless_fast_2_cores", files: paths) { _ = ImageFileHasher(mode: .fast, threads: 2).fingerprint(paths: paths) }
            let jpegRate = measure("leakless_fast_1_core_jpeg", files: jpegPaths) { _ = ImageFileHasher(mode: .fast, threads: 1).fingerprint(paths: jpegPaths) }
            _ = measure("leakless_compatible_1_core", files: paths) { compatible = ImageFileHasher(mode: .compatible, threads: 1).fingerprint(paths: paths) }
            let floorRate = try measure("leakless_decode_only_1_core", files: paths) { _ = try DedupBenchmark.decodeOnly(paths: paths) }
            var ratios: [String: JSONValue] = [
                "fast_1_core_over_own_decode_floor": .double(rounded3(one / floorRate)),
                "fast_2_cores_over_1_core": .double(rounded3(two / one)),
            ]
            if let floor {
                let result = try runTool(floor, ["-s", "8", "-"], input: paths.joined(separator: "\n") + "\n")
                let value = try JSONParser.parse(bytes: Array(result.utf8))
                let seconds = (value.objectValue?["decode_s"]?.doubleValue ?? 0) + (value.objectValue?["read_s"]?.doubleValue ?? 0)
                throughput["c_decode_floor_1_core"] = .object(["files": .int(Int64(paths.count)), "seconds": .double(rounded3(seconds)), "files_per_second": .double(rounded3(Double(paths.count) / seconds))])
                ratios["fast_1_core_over_c_floor"] = .double(rounded3(one / (Double(paths.count) / seconds)))
                print("C decode floor (-s 8, read included): \(String(format1: Double(paths.count) / seconds, digits: 1)) files/s")
            }
            var imagehashHashes: [String: String] = [:]
            if let python {
                let work = FileSystem.join(FileSystem.parent(of: output), ".bench-dedup-work")
                try FileSystem.createDirectory(work)
                defer { try? FileSystem.remove(work) }
                let linked = try linkFolder(FileSystem.join(work, "all"), paths: paths)
                let linkedJPEG = try linkFolder(FileSystem.join(work, "jpeg"), paths: jpegPaths)
                let reference = try runPython(python, "bench_imagehash.py", [linked, FileSystem.join(work, "ih.json"), "--hashes", FileSystem.join(work, "ih-hashes.json")], work: work, result: "ih.json")
                let referenceJPEG = try runPython(python, "bench_imagehash.py", [linkedJPEG, FileSystem.join(work, "ihj.json")], work: work, result: "ihj.json")
                let ihRate = reference["files_per_s"]?.doubleValue ?? 0, ihJPEG = referenceJPEG["files_per_s"]?.doubleValue ?? 0
                throughput["imagehash_phash_1_process"] = .double(rounded3(ihRate))
                throughput["imagehash_phash_1_process_jpeg"] = .double(rounded3(ihJPEG))
                ratios["fast_1_core_over_imagehash"] = .double(rounded3(one / ihRate))
                ratios["fast_jpeg_over_imagehash_jpeg"] = .double(rounded3(jpegRate / ihJPEG))
                print("imagehash.phash: \(String(format1: ihRate, digits: 1)) files/s, JPEG only \(String(format1: ihJPEG, digits: 1)) files/s")
                let hashes = try JSONParser.parse(bytes: FileSystem.read(FileSystem.join(work, "ih-hashes.json")))
                for (name, value) in hashes.objectValue ?? [:] { imagehashHashes[name] = value.stringValue }
                let dedup = try runPython(python, "bench_imagededup.py", [linked, FileSystem.join(work, "dd.json")], work: work, result: "dd.json")
                if let search = dedup["search"]?.objectValue?["brute_force_cython"]?.objectValue {
                    figures["imagededup_phash_threshold_10"] = .object([
                        "precision": search["precision"] ?? .null, "recall": search["recall"] ?? .null,
                        "predicted_pairs": search["pred_pairs"] ?? .null, "encode_files_per_second": dedup["encode_files_per_s"] ?? .null,
                    ])
                    print("imagededup PHash at 10: precision \(search["precision"]?.doubleValue ?? 0), recall \(search["recall"]?.doubleValue ?? 0)")
                }
            }
            throughput["ratios"] = .object(ratios)
            figures["throughput"] = .object(throughput)

            // Accuracy of duplicate pairs.
            func hashes(_ results: [Result<ImageFingerprint, ImageError>]) throws -> [ImageHashes] {
                try results.map { try $0.get().hashes }
            }
            let fastHashes = try hashes(fast), compatibleHashes = try hashes(compatible)
            var accuracy: [String: JSONValue] = [:]
            func report(_ name: String, _ pairs: [(Int32, Int32, Int)]) {
                let result = DedupBenchmark.accuracy(pairs: pairs, corpus: set)
                accuracy[name] = result.json
                print("\(name): precision \(String(format1: result.precision, digits: 4)), recall \(String(format1: result.recall, digits: 4)) (\(result.predicted) pairs, \(result.predicted - result.truePositives) false)")
            }
            report("fast_default_rule", rule.pairs(fastHashes, threads: 2))
            report("compatible_default_rule", rule.pairs(compatibleHashes, threads: 2))
            for radius in [8, 10, 12] {
                report("fast_phash_\(radius)", DedupBenchmark.pairs(fastHashes.map(\.phash), radius: radius))
                report("compatible_phash_\(radius)", DedupBenchmark.pairs(compatibleHashes.map(\.phash), radius: radius))
            }
            for (p, d, pc, dc) in [(8, 10, 16, 20), (10, 10, 14, 20), (10, 10, 18, 20), (10, 11, 16, 20), (10, 10, 16, 64)] {
                let variant = NearDuplicateRule(phash: p, dhash: d, phashConfirm: pc, dhashConfirm: dc)
                report("fast_rule_p\(p)_d\(d)_pc\(pc)_dc\(dc)", variant.pairs(fastHashes, threads: 2))
            }
            figures["accuracy"] = .object(accuracy)

            if !imagehashHashes.isEmpty {
                var agreement: [String: JSONValue] = [:]
                for (name, found) in [("compatible", compatibleHashes), ("fast", fastHashes)] {
                    var exact = 0, largest = 0
                    for (file, hash) in zip(set.files, found) {
                        guard let reference = imagehashHashes[file].flatMap(ImageHashes.parse(hex:)) else { continue }
                        let distance = HammingSearch.distance(reference, hash.phash)
                        if distance == 0 { exact += 1 }
                        largest = max(largest, distance)
                    }
                    agreement[name] = .object(["files": .int(Int64(found.count)), "exact": .int(Int64(exact)), "largest_distance": .int(Int64(largest))])
                    print("pHash against imagehash, \(name) mode: \(exact) of \(found.count) exact, largest distance \(largest)")
                }
                figures["phash_agreement_with_imagehash"] = .object(agreement)
            }
            figures["corpus"] = .object([
                "folder": .string(corpus), "files": .int(Int64(paths.count)), "jpeg": .int(Int64(jpegPaths.count)),
                "png": .int(Int64(paths.count - jpegPaths.count)), "true_pairs": .int(Int64(set.truePairs)),
            ])
            figures["cpus"] = .int(Int64(ProcessInfo.processInfo.activeProcessorCount))
            figures["runs"] = .int(Int64(runs))
            try FileSystem.createDirectory(FileSystem.parent(of: output))
            try AtomicFile.write(Array(JSONWriter.pretty(.object(figures)).utf8), to: output)
            print("written to \(output)")
        }
    }



    /// A folder of links to the files, so a reference script that takes a folder reads exactly these.
    private func linkFolder(_ folder: String, paths: [String]) throws -> String {
        try FileSystem.createDirectory(folder)
        for path in paths {
            let absolute = path.hasPrefix("/") ? path : FileSystem.join(FileManager.default.currentDirectoryPath, path)
            try FileManager.default.createSymbolicLink(atPath: FileSystem.join(folder, FileSystem.lastComponent(of: path)), withDestinationPath: absolute)
        }
        // The scripts need the ground truth of exactly these files.
        let truth = try String(decoding: FileSystem.read(FileSystem.join(corpus, "ground_truth.jsonl")), as: UTF8.self)
        let names = Set(paths.map { FileSystem.lastComponent(of: $0) })
        let lines = truth.split(separator: "\n").filter { line in
            guard let value = try? JSONParser.parse(bytes: Array(line.utf8)), let file = value.objectValue?["file"]?.stringValue else { return false }
            return names.contains(file)
        }
        try AtomicFile.write(Array((lines.joined(separator: "\n") + "\n").utf8), to: FileSystem.join(folder, "ground_truth.jsonl"))
        return folder
    }

    private func runPython(_ python: String, _ script: String, _ arguments: [String], work: String, result: String) throws -> [String: JSONValue] {
        print("running \(script) ...")
        _ = try runTool(python, [FileSystem.join(scripts, script)] + arguments, input: nil)
        return try JSONParser.parse(bytes: FileSystem.read(FileSystem.join(work, result))).objectValue ?? [:]
    }

    private func runTool(_ executable: String, _ arguments: [String], input: String?) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        let feed = Pipe()
        if input != nil { process.standardInput = feed }
        try process.run()
        if let input {
            feed.fileHandleForWriting.write(Data(input.utf8))
            try feed.fileHandleForWriting.close()
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw RecordError("\(executable) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)") }
        return String(decoding: data, as: UTF8.self)
    }
}
