import LeaklessCore
import LeaklessEmbedding

/// `leakless select` on a benchmark folder in VLSBench's layout: its pairs are the candidates,
/// matched to the eval.json labels by instruction id; the chosen pairs are written as a new
/// benchmark folder (data.json with the original instruction ids, the images they show,
/// provenance.jsonl when the pool has one, each line with its item statistics) with the report
/// beside them (select.md, select.html, select.json) and `selection.jsonl`, every pair's
/// statistics and whether and why it was kept. The folder appears whole or not at all.
public enum BenchmarkSelection {
    public struct Outcome {
        public let report: SelectionReport
        public let selected: Int
    }

    public static func run(benchmark: String, evaluations: String, settings given: SelectionSettings, quotaRule: String,
                           model: String, output: String) throws -> Outcome {
        let dataPath = FileSystem.join(benchmark, "data.json")
        guard case .array(let entries) = try BenchmarkImporter.parseJSON(dataPath) else {
            throw LocatedError(path: dataPath, line: nil, message: "expected a JSON array of pairs")
        }
        var candidates: [SelectionCandidate] = []
        var texts: [String] = []
        var keys: [String] = []
        var position: [String: Int] = [:]
        for (index, entry) in entries.enumerated() {
            guard let id = entry["instruction_id"]?.intValue, let category = entry["category"]?.stringValue,
                let image = entry["image_path"]?.stringValue, let instruction = entry["instruction"]?.stringValue
            else {
                throw LocatedError(path: dataPath, line: nil, message: "pair \(index + 1): needs 'instruction_id', 'instruction', 'image_path' and 'category'")
            }
            if position[String(id)] != nil { throw LocatedError(path: dataPath, line: nil, message: "pair \(index + 1): instruction_id \(id) appears twice") }
            position[String(id)] = keys.count
            keys.append(String(id))
            candidates.append(SelectionCandidate(id: String(id), category: category, image: image))
            texts.append(instruction + "\n" + (entry["image_description"]?.stringValue ?? ""))
        }
        let results = try EvaluationResults.load(files: try EvaluationResults.files(at: evaluations), key: .instructionID)
        let strangers = results.pairs.subtracting(keys)
        if !strangers.isEmpty {
            throw LocatedError(path: evaluations, line: nil,
                               message: "\(strangers.count) of the \(results.pairs.count) pairs evaluated are not in \(dataPath) (e.g. instruction_id \(strangers.sorted().first!)): evaluate this benchmark")
        }
        let (responses, blind) = results.matrices(items: keys)
        var settings = given
        if blind == nil { settings.weights.visualDependence = 0 }
        var selection: SubsetSelection
        do {
            selection = try SubsetSelection(candidates: candidates, responses: responses, blind: blind, settings: settings)
        } catch let error as SelectionError {
            throw LocatedError(path: evaluations, line: nil, message: error.description)
        }
        if settings.weights.diversity > 0 {
            guard SentenceEmbedder.available(in: model) else {
                throw LocatedError(path: model, line: nil, message: "no sentence-embedding model here (scripts/setup fetches it): the diversity weight needs it, or give it weight 0")
            }
            let embedder = try SentenceEmbedder(folder: model)
            let progress = Progress(label: "select")
            let total = texts.count
            let vectors = embedder.embed(texts) { done in progress.tick("embedding \(progress.rate(done: done, total: total))") }
            progress.finish("embedded \(texts.count) pairs")
            selection = try SubsetSelection(
                candidates: zip(candidates, vectors).map { candidate, vector in
                    var copy = candidate
                    copy.embedding = vector
                    return copy
                }, responses: responses, blind: blind, settings: settings)
        }
        let progress = Progress(label: "select")
        selection.run { progress.tick($0) }
        let report = SelectionReport(selection, quotaRule: quotaRule)

        // The folder, built aside and moved into place.
        let temporary = TemporaryName.beside(output)
        try FileSystem.remove(temporary)
        defer { try? FileSystem.remove(temporary) }
        try FileSystem.createDirectory(temporary)
        let chosen = Set(selection.selected.map(\.item))
        var statistics: [String: JSONValue] = [:]
        var lines: [String] = []
        let order = Dictionary(uniqueKeysWithValues: selection.selected.map { ($0.item, $0) })
        for item in candidates.indices {
            var fields = selection.statistics[item].json.objectValue ?? [:]
            fields["instruction_id"] = entries[item]["instruction_id"]
            if let entry = order[item] {
                fields["kept"] = true
                fields["order"] = .int(Int64(entry.order + 1))
                fields["gains"] = .object(entry.gains.mapValues { .double($0.rounded(places: 4)) })
            } else {
                fields["kept"] = false
                if let left = selection.leftOut[item] {
                    fields["reason"] = .string(left.reason)
                    fields["detail"] = .string(left.detail)
                }
            }
            statistics[keys[item]] = .object(fields)
            lines.append(JSONWriter.canonical(.object(fields)))
        }
        var kept: [JSONValue] = []
        for item in candidates.indices where chosen.contains(item) {
            let path = candidates[item].image
            let source = FileSystem.join(benchmark, path)
            let target = FileSystem.join(temporary, path)
            if !FileSystem.exists(target) {
                guard FileSystem.exists(source) else {
                    throw LocatedError(path: dataPath, line: nil, message: "pair \(item + 1): its image \(path) is not in \(benchmark)")
                }
                try FileSystem.createDirectory(FileSystem.parent(of: target))
                try AtomicFile.write(try FileSystem.read(source), to: target)
            }
            kept.append(entries[item])
        }
        try AtomicFile.write(JSONWriter.pretty(.array(kept), keyOrder: VLSBenchExporter.fields), to: FileSystem.join(temporary, "data.json"))
        let provenance = FileSystem.join(benchmark, "provenance.jsonl")
        if FileSystem.exists(provenance) {
            var out: [String] = []
            let reader = try JSONLReader(path: provenance)
            while let (_, line) = try reader.nextRecord() {
                guard let id = line["instruction_id"]?.intValue, let index = position[String(id)], chosen.contains(index) else { continue }
                var fields = line.fields
                fields["selection"] = statistics[String(id)]
                out.append(JSONWriter.canonical(.object(fields)))
            }
            try AtomicFile.write(out.joined(separator: "\n") + (out.isEmpty ? "" : "\n"), to: FileSystem.join(temporary, "provenance.jsonl"))
        }
        try AtomicFile.write(lines.joined(separator: "\n") + "\n", to: FileSystem.join(temporary, "selection.jsonl"))
        try AtomicFile.write(report.markdown(), to: FileSystem.join(temporary, "select.md"))
        try AtomicFile.write(report.html(), to: FileSystem.join(temporary, "select.html"))
        try AtomicFile.write(JSONWriter.pretty(report.json), to: FileSystem.join(temporary, "select.json"))
        try FileSystem.replaceDirectory(output, with: temporary)
        return Outcome(report: report, selected: kept.count)
    }
}
