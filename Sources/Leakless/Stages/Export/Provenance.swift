import LeaklessCore

/// What the stages before the export wrote, read back for the provenance of each pair and the
/// dataset card: each stage's counts and models, and every record's parents.
struct LineageIndex {
    struct FunnelRow {
        let stage: String
        let recordsIn: Int
        let recordsOut: Int
        let rejectsByReason: [String: Int]
    }

    private(set) var funnel: [FunnelRow] = []
    /// Per stage, the backend of each role as "kind model".
    private(set) var models: [(stage: String, role: String, backend: String)] = []
    private var parents: [String: String] = [:]

    /// `statsFiles` are the stages' `.stats.json`, in pipeline order; the output and config
    /// files sit beside each.
    init(statsFiles: [String]) throws {
        for path in statsFiles where FileSystem.exists(path) {
            let stats = try StageStats.load(path: path)
            funnel.append(FunnelRow(stage: stats.stage, recordsIn: stats.recordsIn, recordsOut: stats.recordsOut, rejectsByReason: stats.rejectsByReason))
            let base = String(path.dropLast(".stats.json".count))
            if let request = try? StageRunRequest.load(path: base + ".request.json") {
                for (role, backend) in request.backends.sorted(by: { $0.key < $1.key }) {
                    let model = backend.settings["model"]?.stringValue
                    models.append((stats.stage, role, backend.kind + (model.map { " \($0)" } ?? "")))
                }
            }
            if FileSystem.exists(base + ".jsonl") {
                let reader = try JSONLReader(path: base + ".jsonl")
                while let (_, record) = try reader.nextRecord() {
                    if let parent = record.parents.first { parents[record.id] = parent }
                }
            }
        }
    }

    /// The ids a record was made from, itself first, back to the taxonomy element.
    func lineage(of record: Record) -> [String] {
        var chain = [record.id]
        var next = record.parents.first
        while let id = next, !chain.contains(id) {
            chain.append(id)
            next = parents[id]
        }
        return chain
    }

    /// One line of `provenance.jsonl`.
    func provenance(of record: Record, instructionID: Int, imagePath: String) -> JSONValue {
        var stages: [String: JSONValue] = [:]
        for stage in StageRegistry.all {
            if let entry = stage.provenance(of: record) { stages[stage.definition.name] = entry }
        }
        return .object([
            "instruction_id": .int(Int64(instructionID)), "image_path": .string(imagePath), "pair": .string(record.id),
            "lineage": .array(lineage(of: record).map { .string($0) }), "element": record["element"]?.objectValue?["name"] ?? .null,
            "image_blob": record["image"]?.objectValue?["blob"] ?? .null, "stages": .object(stages),
            "taxonomy": record["taxonomy"] ?? .null,
        ])
    }
}

/// The dataset card (`README.md` of an export): what the benchmark is, its counts, the funnel
/// that made it, its queries' lengths, the models, and how to cite it.
struct DatasetCard {
    private var perSubCategory: [String: [String: Int]] = [:]
    private var perSource: [String: Int] = [:]
    private var queryWords: [Int] = []
    private var taxonomy: Set<String> = []
    /// Per pair source, the licence of each distinct image it uses.
    private var licences: [String: [String: Set<String>]] = [:]

    mutating func add(_ record: Record) {
        let category = record.string("category") ?? "", sub = record.string("sub_category") ?? ""
        perSubCategory[category, default: [:]][sub, default: 0] += 1
        perSource[record.string("source") ?? "", default: 0] += 1
        queryWords.append(Text.tokens(record.string("query") ?? "").count)
        if let version = record.string("taxonomy") { taxonomy.insert(version) }
        if let image = record["image"]?.objectValue, let blob = image["blob"]?.stringValue {
            let licence = image["license"]?.stringValue ?? "not recorded"
            licences[record.string("source") ?? "", default: [:]][licence, default: []].insert(blob)
        }
    }

    /// The Hugging Face dataset card's YAML header, so the Hub and `datasets` read the folder:
    /// licence (per image, hence "other"), task, language, size and the data files.
    static func hubHeader(format: ExportFormat, pairs: Int) -> [String] {
        let size = pairs < 1_000 ? "n<1K" : pairs < 10_000 ? "1K<n<10K" : pairs < 100_000 ? "10K<n<100K" : "100K<n<1M"
        return [
            "---", "license: other", "license_name: per image, see the source and licence of each in provenance.jsonl",
            "task_categories:", "- visual-question-answering", "language:", "- en", "tags:", "- safety", "- multimodal", "- vsil",
            "size_categories:", "- \(size)", "configs:", "- config_name: default", "  data_files:", "  - split: test",
        ] + (format == .vlsbench ? ["    path: data.json"] : ["    path:", "    - metadata.jsonl", "    - imgs/*"]) + ["---", "",
        ]
    }

    func markdown(format: ExportFormat, funnel: [LineageIndex.FunnelRow], models: [(stage: String, role: String, backend: String)]) -> String {
        let total = queryWords.count
        var lines = Self.hubHeader(format: format, pairs: total) + [
            "# Multimodal safety benchmark (VLSBench construction)", "",
            "Image/query pairs in which the text query is harmless on its own and only the image makes the request risky: no visual safety information leakage (VSIL). Built by leakless, which reproduces the construction of VLSBench (Hu et al., arXiv 2411.19939): harmful elements, seed queries, rewriting so the risk moves into the image, a VSIL detector, images, a final pair filter and perceptual-hash dedup.",
            "",
            format == .vlsbench
                ? "Layout: `data.json` (a JSON array of instruction_id, instruction, image_path, category, sub_category, source, image_description, safety_reason) and `imgs/`, as VLSBench releases it, so its evaluation code runs unchanged."
                : "Layout: a Hugging Face `datasets` imagefolder: `metadata.jsonl` (file_name, instruction_id, instruction, category, sub_category, source, image_description, safety_reason) beside `imgs/`; load it with `load_dataset(\"imagefolder\", data_dir=...)`.",
            "`provenance.jsonl` gives, for each pair, the ids of every record it was made from and what each stage did (model, endpoint kind, prompt-template and reply hashes; for a generated image its model, prompt, seed, size, steps and guidance; for a retrieved one its source, original path and licence).",
            "", "## Pairs", "", "\(total) pairs.", "", "| category | sub-category | pairs |", "|---|---|---|",
        ]
        for (category, subs) in perSubCategory.sorted(by: { $0.key < $1.key }) {
            let sum = subs.values.reduce(0, +)
            lines.append("| **\(category)** | | **\(sum)** |")
            for (sub, count) in subs.sorted(by: { $0.key < $1.key }) { lines.append("| | \(sub) | \(count) |") }
        }
        lines += ["", "Sources: " + perSource.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "."]
        if !queryWords.isEmpty {
            let sorted = queryWords.sorted()
            let mean = Double(sorted.reduce(0, +)) / Double(sorted.count)
            lines += ["", "Query length in words: min \(sorted.first!), median \(sorted[sorted.count / 2]), mean \(String(format1: mean, digits: 1)), max \(sorted.last!)."]
        }
        if !licences.isEmpty {
            lines += ["", "## Images and their licences", "", "| source | licence | images |", "|---|---|---|"]
            for (source, byLicence) in licences.sorted(by: { $0.key < $1.key }) {
                for (licence, images) in byLicence.sorted(by: { $0.key < $1.key }) {
                    lines.append("| \(escapeTable(source)) | \(escapeTable(licence)) | \(images.count) |")
                }
            }
            lines += ["", "Each image's own source and licence are in `provenance.jsonl`."]
        }
        lines += ["", "## How it was made", "", "| stage | in | out | rejected, by reason |", "|---|---|---|---|"]
        for row in funnel {
            let reasons = row.rejectsByReason.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            lines.append("| \(row.stage) | \(row.recordsIn) | \(row.recordsOut) | \(reasons.isEmpty ? "-" : reasons) |")
        }
        lines += ["", "Models: " + (models.isEmpty ? "none recorded." : models.map { "\($0.stage) \($0.role): \($0.backend)" }.joined(separator: "; ") + ".")]
        if !taxonomy.isEmpty { lines.append("Taxonomy: \(taxonomy.sorted().joined(separator: ", ")).") }
        lines += [
            "", "## Citation", "",
            "Please cite the VLSBench paper, whose construction this benchmark follows:", "",
            "```bibtex",
            "@inproceedings{hu-etal-2025-vlsbench,",
            "  title     = {{VLSB}ench: Unveiling Visual Leakage in Multimodal Safety},",
            "  author    = {Hu, Xuhao and Liu, Dongrui and Li, Hao and Huang, Xuanjing and Shao, Jing},",
            "  booktitle = {Proceedings of the 63rd Annual Meeting of the Association for Computational Linguistics (Volume 1: Long Papers)},",
            "  year      = {2025},",
            "  address   = {Vienna, Austria},",
            "  pages     = {8285--8316},",
            "  note      = {arXiv:2411.19939}",
            "}",
            "```",
        ]
        return lines.joined(separator: "\n") + "\n"
    }
}
