import LeaklessCore

/// The one-screen summary after a run, and the `status` table.
public enum RunSummary {
    public static func table(_ reports: [PipelineDriver.StageReport], statusOnly: Bool) -> String {
        var rows: [[String]] = [["stage", statusOnly ? "state" : "this run", "in", "out", "rejected", "why rejected", "output"]]
        for report in reports {
            let state: String
            if statusOnly {
                state = report.stage.state
            } else {
                state = report.ran ? "ran \(formatSeconds(report.wallSeconds))" : (report.stage.isCached ? "cached" : "not run")
            }
            let stats = report.stats
            let reasons = (stats?.rejectsByReason ?? [:]).sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            rows.append([
                report.stage.name, state, stats.map { String($0.recordsIn) } ?? "-", stats.map { String($0.recordsOut) } ?? "-",
                stats.map { String($0.rejected) } ?? "-", reasons.isEmpty ? "-" : reasons,
                FileSystem.lastComponent(of: report.stage.config.definition.writesFolder ? report.stage.files.outputFolder : report.stage.files.output),
            ])
        }
        return format(rows)
    }

    /// The pairs per category of an export: its data.json, or an imagefolder's metadata.jsonl.
    public static func categories(benchmark folder: String) throws -> String? {
        let data = FileSystem.join(folder, "data.json"), metadata = FileSystem.join(folder, "metadata.jsonl")
        if FileSystem.exists(data) { return try categories(entries: try JSONParser.parse(bytes: try FileSystem.read(data)).arrayValue ?? []) }
        guard FileSystem.exists(metadata) else { return nil }
        var entries: [JSONValue] = []
        let reader = try JSONLReader(path: metadata)
        while let (_, record) = try reader.nextRecord() { entries.append(record.json) }
        return try categories(entries: entries)
    }

    static func categories(entries: [JSONValue]) throws -> String {
        var counts: [String: [String: Int]] = [:]
        for entry in entries {
            counts[entry["category"]?.stringValue ?? "?", default: [:]][entry["sub_category"]?.stringValue ?? "?", default: 0] += 1
        }
        var rows: [[String]] = [["category", "pairs", "sub-categories"]]
        for (category, subs) in counts.sorted(by: { $0.key < $1.key }) {
            let detail = subs.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            rows.append([category, String(subs.values.reduce(0, +)), detail])
        }
        rows.append(["total", String(entries.count), ""])
        var sources: [String: Int] = [:]
        for entry in entries { sources[entry["source"]?.stringValue ?? "?", default: 0] += 1 }
        let images = "images by source: " + sources.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        return format(rows) + "\n\n" + images
    }

    static func format(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = Array(repeating: 0, count: first.count)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
