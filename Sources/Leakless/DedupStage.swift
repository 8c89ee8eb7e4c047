import LeaklessCore

/// dedup: drops exact duplicates. The same query twice (after case, spacing and punctuation are
/// normalised) is a defect; the same image may carry up to `max_queries_per_image` queries.
/// The first record of a group is kept (the input's order is deterministic); every dropped one
/// is rejected with the id of the record it duplicates.
public struct DedupStage: RecordStage {
    let maxPerImage: Int
    let dedupQueries: Bool
    var queries: [String: String] = [:]
    var images: [String: (count: Int, first: String)] = [:]

    public init(context: StageContext) {
        maxPerImage = context.int("max_queries_per_image")
        dedupQueries = context.bool("dedup_queries")
    }

    public mutating func process(_ record: Record) throws -> [StageOutput] {
        try record.requireKind(["pair"])
        let id = record.id
        if dedupQueries {
            let normalized = Text.normalized(try record.requireString("query"))
            if let kept = queries[normalized] {
                return [.reject(record, reason: "duplicate-query", detail: "same query as \(kept)")]
            }
            queries[normalized] = id
        }
        guard let blob = try record.requireObject("image")["blob"]?.stringValue else {
            throw RecordError("field 'image' has no 'blob'")
        }
        let seen = images[blob]
        if let seen, seen.count >= maxPerImage {
            return [.reject(record, reason: "image-reused",
                            detail: "image \(blob) already carries \(seen.count) queries (max_queries_per_image \(maxPerImage)); first with \(seen.first)")]
        }
        images[blob] = ((seen?.count ?? 0) + 1, seen?.first ?? id)
        return [.record(record)]
    }
}
