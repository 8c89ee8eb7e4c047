import ArgumentParser
import Foundation
import Leakless
import LeaklessCore
import LeaklessEmbedding

public struct TrainDetectorCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "train-detector",
        abstract: "Train the detector's two heads on sentence embeddings of the development benchmarks and the project's own seeds and rewrites; measure them leave-one-benchmark-out; write the heads and the table.")

    @Option(help: "The folder of the development benchmarks.")
    var benchmarks: String = "../shared/benchmarks"

    @Option(help: "The folder of the labelled text sets (text alone: harmful or not).")
    var training: String = "../shared/training"

    @Option(help: "Write the harm corpus (every labelled text once, with its source, set and the lexicon's features) to this JSONL file and stop: what scripts/train-harm-classifier fine-tunes on.")
    var corpus: String?

    @Option(help: "The sentence-embedding model folder.")
    var model: String = SentenceEmbedder.defaultFolder

    @Option(help: "Where to write the heads (JSON).")
    var output: String = "data/detector/heads.json"

    @Option(help: "Where to write the leave-one-benchmark-out figures (JSON; the table goes beside it as .md).")
    var quality: String = "bench/detector-quality-embedding.json"

    @Option(help: "Also write the examples and their embeddings here (examples.jsonl, texts.jsonl, vectors.f32), to study them elsewhere.")
    var dump: String?

    public init() {}

    public func run() throws {
        try reportingErrors {
            let examples = try DetectorTraining.examples(benchmarks: benchmarks, project: ".")
            if let corpus {
                try writeCorpus(examples, to: corpus)
                return
            }
            let embedder = try SentenceEmbedder(folder: model)
            let vectors = DetectorTraining.embed(examples, with: embedder)
            let trained = DetectorTraining.train(examples, vectors: vectors)
            let (harm, leak) = (trained.harm, trained.leak)
            if let dump {
                var texts: [String] = [], lines: [String] = []
                var index: [String: Int] = [:]
                for text in examples.flatMap({ [$0.text, $0.context].compactMap { $0 } }) where index[text] == nil {
                    index[text] = texts.count
                    texts.append(text)
                }
                for example in examples {
                    lines.append(JSONWriter.canonical([
                        "text": .int(Int64(index[example.text]!)), "context": example.context.map { .int(Int64(index[$0]!)) } ?? .null,
                        "harmful": example.harmful.map(JSONValue.bool) ?? .null, "leaks": example.leaks.map(JSONValue.bool) ?? .null,
                        "source": .string(example.source),
                    ]))
                }
                try AtomicFile.write(lines.joined(separator: "\n") + "\n", to: FileSystem.join(dump, "examples.jsonl"))
                try AtomicFile.write(texts.map { JSONWriter.canonical(.string($0)) + "\n" }.joined(), to: FileSystem.join(dump, "texts.jsonl"))
                try AtomicFile.write(texts.flatMap { vectors[$0]!.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }, to: FileSystem.join(dump, "vectors.f32"))
            }
            var counts: [String: JSONValue] = [:]
            for (source, group) in Dictionary(grouping: examples, by: \.source).sorted(by: { $0.key < $1.key }) {
                counts[source] = [
                    "harmful": .int(Int64(group.filter { $0.harmful == true }.count)), "not_harmful": .int(Int64(group.filter { $0.harmful == false }.count)),
                    "leaks": .int(Int64(group.filter { $0.leaks == true }.count)), "no_leak": .int(Int64(group.filter { $0.leaks == false }.count)),
                ]
            }
            var files: [String: JSONValue] = [:]
            for file in try FileSystem.files(under: benchmarks).sorted() where file.hasSuffix(".json") || file.hasSuffix(".jsonl") {
                files[file] = .string(try FileSystem.contentHash(of: FileSystem.join(benchmarks, file)).hex)
            }
            for file in ["data/taxonomy.yaml", "data/detector/everyday.yaml"] {
                files[file] = .string(try FileSystem.contentHash(of: file).hex)
            }
            // The table: each benchmark's sets judged by heads trained without it.
            let lexical = try DetectorSettings().lexical()
            let taxonomy = try Taxonomy.load(path: DetectorSettings.defaultTaxonomy)
            let concepts = EmbeddingDetector(embedder: embedder, heads: trained, lexical: lexical, taxonomy: taxonomy).concepts
            let result = DetectorTraining.leaveOneBenchmarkOut(
                examples, vectors: vectors, sets: try DetectorQuality.standardSets(benchmarks: benchmarks)
            ) { heads in
                EmbeddingDetector(embedder: embedder, heads: heads, lexical: lexical, taxonomy: nil, concepts: concepts)
            }
            let heads: JSONValue = [
                "model": .string(FileSystem.lastComponent(of: model)), "features": [
                    "harm": .string("the query's embedding (384), trained with each benchmark's style projected out"),
                    "leak": "the query's embedding times the embedding of what the image shows (384), and their cosine",
                ],
                "harm_threshold": .double(Double(trained.harmThreshold)), "leak_threshold": .double(Double(trained.leakThreshold)),
                "thresholds": .string("the lowest probability, 0.5 at least, that flags at most \(Int(DetectorTraining.cleanRate * 100))% of any training benchmark's clean examples"), "harm": harm.json, "leak": leak.json,
                "trained_on": ["examples": .object(counts), "files": .object(files)],
                "leave_one_benchmark_out": DetectorQuality.json(result),
            ]
            try FileSystem.createDirectory(FileSystem.parent(of: output))
            try AtomicFile.write(JSONWriter.pretty(heads), to: output)
            let table = DetectorQuality.markdown(result)
            try FileSystem.createDirectory(FileSystem.parent(of: quality))
            try AtomicFile.write(JSONWriter.pretty(DetectorQuality.json(result)), to: quality)
            try AtomicFile.write(table, to: quality.hasSuffix(".json") ? String(quality.dropLast(5)) + ".md" : quality + ".md")
            print(table, terminator: "")
            print("\(examples.count) examples; heads written to \(output), figures to \(quality)")
        }
    }

    func writeCorpus(_ examples: [DetectorTraining.Example], to path: String) throws {
        let built = TrainingSets.corpus(benchmarks: examples, training: try TrainingSets.read(folder: training))
        let lexical = try DetectorSettings().lexical()
        var lines = ""
        for text in built.texts {
            lines += JSONWriter.canonical([
                "text": .string(text.text), "harmful": text.harmful.map(JSONValue.bool) ?? .null, "source": .string(text.source),
                "set": .string(text.set), "lexicon": .array(lexical.harmFeatures(text.text).map { .double(Double($0)) }),
                "lexicon_verdict": .string(lexical.judge(text.text).verdict.rawValue),
            ]) + "\n"
        }
        try FileSystem.createDirectory(FileSystem.parent(of: path))
        try AtomicFile.write(lines, to: path)
        let labelled = built.texts.filter { $0.harmful != nil }
        print("\(built.texts.count) texts (\(labelled.filter { $0.harmful == true }.count) harmful, \(labelled.filter { $0.harmful == false }.count) harmless, \(built.texts.count - labelled.count) measured only); \(built.duplicates) duplicates and \(built.conflicting) with conflicting labels dropped; written to \(path)")
    }
}
