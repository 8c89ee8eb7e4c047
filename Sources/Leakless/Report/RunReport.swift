import Foundation
import LeaklessCore
import LeaklessImaging
import LeaklessModels

/// The browsable report of a finished run: one folder of static HTML that opens from disk, with
/// nothing loaded from elsewhere. The funnel and the categories as SVG charts; a grid of the
/// exported pairs (and of the pairs the filter and dedup dropped) with thumbnails, filtered by
/// category and verdict; every stage's rejects with their reasons; near-duplicate images side by
/// side with their distances. A small script in the page checks itself (console errors,
/// thumbnails loaded, counts) and writes the result into `#selftest`, for tests in a browser.
public struct RunReport {
    public let stages: [PlannedStage]
    public let blobs: String
    public var thumbnailSide = 160
    public var rejectsShown = 150
    public var droppedPairsShown = 5000
    /// `leakless eval`'s eval.json, shown when it is there.
    public var evaluation: String?

    public init(stages: [PlannedStage], blobs: String) {
        self.stages = stages
        self.blobs = blobs
    }

    struct Card {
        let query: String
        let description: String
        let safety: String
        let category: String
        let subCategory: String
        let source: String
        let verdict: String
        let thumbnail: String
        /// The exported pair's instruction_id, or the dropped record's id.
        var label: String = ""
        /// The ids a reject's detail names: one may be the kept pair it duplicates (linked on the card).
        var named: [String] = []
        /// The record id, the card's anchor.
        var anchor: String = ""
        /// The ids of the records it was made from (a reject names the kept pair by one of them).
        var lineage: [String] = []
    }

    /// Writes `index.html` and `thumbs/` into `folder` (built aside, then moved into place).
    /// Returns the number of exported pairs shown.
    @discardableResult
    public func write(to folder: String) throws -> Int {
        for stage in stages where !stage.isCached {
            throw RecordError("stage '\(stage.name)' has not finished (\(stage.files.stats) is missing): run the pipeline first")
        }
        guard let export = stages.last, export.config.definition.writesFolder else {
            throw RecordError("the pipeline has no export stage: the report shows an exported benchmark")
        }
        guard ReportPage.mayReplace(folder) else {
            throw RecordError("\(folder) holds files that are not a leakless report; nothing was written: give an empty or new folder with --output")
        }
        let temporary = TemporaryName.beside(folder)
        try FileSystem.remove(temporary)
        try FileSystem.createDirectory(FileSystem.join(temporary, "thumbs"))
        do {
            var thumbs = Thumbnails(folder: FileSystem.join(temporary, "thumbs"), side: thumbnailSide)
            let exported = try exportedCards(folder: export.files.outputFolder, thumbs: &thumbs)
            var sections: [String] = []
            var dropped: [Card] = []
            var groups: [String] = []
            for stage in stages.dropLast() {
                let (section, cards, pairs) = try rejects(of: stage, thumbs: &thumbs)
                sections.append(section)
                dropped += cards
                groups += pairs
            }
            let html = page(exported: exported, dropped: Array(dropped.prefix(droppedPairsShown)), droppedTotal: dropped.count,
                            rejectSections: sections, dedupGroups: groups)
            try AtomicFile.write(html, to: FileSystem.join(temporary, "index.html"))
            try FileSystem.replaceDirectory(folder, with: temporary)
            return exported.count
        } catch {
            try? FileSystem.remove(temporary)
            throw error
        }
    }

    // MARK: - Reading

    func exportedCards(folder: String, thumbs: inout Thumbnails) throws -> [Card] {
        var rows: [[String: JSONValue]] = []
        let data = FileSystem.join(folder, "data.json")
        if FileSystem.exists(data) {
            rows = (try JSONParser.parse(bytes: FileSystem.read(data)).arrayValue ?? []).compactMap(\.objectValue)
        } else {
            let metadata = try FileSystem.readText(FileSystem.join(folder, "metadata.jsonl"))
            for line in metadata.split(separator: "\n") {
                var fields = try JSONParser.parse(String(line)).objectValue ?? [:]
                fields["image_path"] = fields["file_name"]
                rows.append(fields)
            }
        }
        // The exported pairs' record ids (provenance.jsonl), so a dedup reject can link to the pair it duplicates.
        var pairIDs: [Int64: (pair: String, lineage: [String])] = [:]
        if let provenance = try? FileSystem.readText(FileSystem.join(folder, "provenance.jsonl")) {
            for line in provenance.split(separator: "\n") {
                if let value = try? JSONParser.parse(String(line)), let id = value["instruction_id"]?.intValue, let pair = value["pair"]?.stringValue {
                    pairIDs[id] = (pair, value["lineage"]?.stringArray ?? [])
                }
            }
        }
        return try rows.map { fields in
            func text(_ key: String) -> String { fields[key]?.stringValue ?? "" }
            let bytes = try FileSystem.read(FileSystem.join(folder, text("image_path")))
            let id = fields["instruction_id"]?.intValue
            var card = Card(
                query: text("instruction"), description: text("image_description"), safety: text("safety_reason"),
                category: text("category"), subCategory: text("sub_category"), source: text("source"), verdict: "exported",
                thumbnail: try thumbs.add(bytes))
            card.label = id.map { "instruction_id \($0)" } ?? ""
            card.anchor = id.flatMap { pairIDs[$0]?.pair } ?? ""
            card.lineage = id.flatMap { pairIDs[$0]?.lineage } ?? []
            return card
        }
    }

    /// A stage's rejects as a section; the pairs among them (with images) as cards; dedup's
    /// near-duplicate images as pairs of thumbnails.
    func rejects(of stage: PlannedStage, thumbs: inout Thumbnails) throws -> (String, [Card], [String]) {
        let stats = try StageStats.load(path: stage.files.stats)
        var section = "<section class=\"stage\" id=\"rejects-\(stage.name)\"><h3>\(escapeHTML(stage.name)): \(stats.recordsIn) in, \(stats.recordsOut) out, <span class=\"rejected-count\">\(stats.rejected)</span> rejected</h3>\n"
        if !stats.rejectsByReason.isEmpty {
            section += "<p>" + stats.rejectsByReason.sorted { $0.key < $1.key }.map { "\(escapeHTML($0.key)) \($0.value)" }.joined(separator: ", ") + "</p>\n"
        }
        var cards: [Card] = []
        var groups: [String] = []
        var rows: [String] = []
        let reader = try JSONLReader(path: stage.files.rejects)
        while let (_, line) = try reader.nextRecord() {
            let reason = line.string("reason") ?? "", detail = line.string("detail") ?? ""
            let record = line["record"]?.objectValue ?? [:]
            let query = record["query"]?.stringValue ?? record["name"]?.stringValue ?? ""
            if rows.count < rejectsShown {
                rows.append("<tr><td>\(escapeHTML(reason))</td><td>\(escapeHTML(query))</td><td><small>\(escapeHTML(detail))</small></td></tr>")
            }
            guard let image = record["image"]?.objectValue, let blob = image["blob"]?.stringValue.flatMap(ContentHash.init(hex:)),
                let format = image["format"]?.stringValue.flatMap(ImageFormat.init(rawValue:))
            else { continue }
            let path = BlobStore(folder: blobs).path(for: blob, format: format)
            guard let bytes = try? FileSystem.read(path), let thumbnail = try? thumbs.add(bytes) else { continue }
            var card = Card(
                query: query, description: record["image_description"]?.stringValue ?? "", safety: record["safety_reason"]?.stringValue ?? "",
                category: record["category"]?.stringValue ?? "", subCategory: record["sub_category"]?.stringValue ?? "",
                source: record["source"]?.stringValue ?? "", verdict: "\(stage.name): \(reason)", thumbnail: thumbnail)
            card.anchor = record["id"]?.stringValue ?? ""
            card.label = "record \(card.anchor.prefix(8))"
            // Dedup's evidence names the kept pair and its image.
            let evidence = line["evidence"]
            card.named = [evidence?["kept_pair"]?.stringValue, evidence?["kept_image"]?.stringValue].compactMap { $0 }.filter { $0 != blob.hex }
            cards.append(card)
            if reason == "near-duplicate-image" || reason == "duplicate-image", groups.count < 60,
                let kept = evidence?["kept_image"]?.stringValue.flatMap(ContentHash.init(hex:)), let keptFormat = [ImageFormat.png, .jpeg].first(where: { FileSystem.exists(BlobStore(folder: blobs).path(for: kept, format: $0)) }),
                let keptThumb = try? thumbs.add(try FileSystem.read(BlobStore(folder: blobs).path(for: kept, format: keptFormat)))
            {
                let distance = evidence?["phash_distance"]?.intValue.map { "pHash distance \($0)" } ?? "same pixels"
                groups.append("<figure class=\"pair\"><img src=\"thumbs/\(thumbnail)\" alt=\"dropped\"><img src=\"thumbs/\(keptThumb)\" alt=\"kept\"><figcaption>dropped, kept: \(distance)</figcaption></figure>")
            }
        }
        if !rows.isEmpty {
            section += "<table><tr><th>reason</th><th>query</th><th>detail</th></tr>\n" + rows.joined(separator: "\n") + "</table>\n"
            if stats.rejected > rows.count { section += "<p><small>the first \(rows.count) of \(stats.rejected)</small></p>\n" }
        }
        return (section + "</section>\n", cards, groups)
    }

    // MARK: - The page

    func page(exported: [Card], dropped: [Card], droppedTotal: Int, rejectSections: [String], dedupGroups: [String]) -> String {
        var perCategory: [String: Int] = [:]
        for card in exported { perCategory[card.category, default: 0] += 1 }
        var body = "<h1>leakless run report</h1>\n"
        body += "<p><b id=\"pair-count\">\(exported.count)</b> pairs exported in <b>\(perCategory.count)</b> categories.</p>\n"
        body += "<nav class=\"index\"><a href=\"#funnel\">Funnel</a> &middot; <a href=\"#categories\">Categories</a> &middot; <a href=\"#pairs\">Pairs</a> &middot; "
            + "<a href=\"#near-duplicates\">Near-duplicate images</a> &middot; <a href=\"#rejected\">Rejected, by stage</a>"
            + (evaluation.map { FileSystem.exists($0) } == true ? " &middot; <a href=\"#evaluation\">Evaluation</a>" : "") + "</nav>\n"
        body += "<h2 id=\"funnel\">Funnel</h2>\n" + funnelChart() + "<h2 id=\"categories\">Categories</h2>\n" + categoryChart(perCategory)
        let verdicts = Array(Set((exported + dropped).map(\.verdict))).sorted { ($0 == "exported" ? "" : $0) < ($1 == "exported" ? "" : $1) }
        let subCategories = Array(Set((exported + dropped).map(\.subCategory).filter { !$0.isEmpty })).sorted()
        body += "<h2 id=\"pairs\">Pairs</h2>\n<p>Category <select id=\"category-filter\"><option value=\"\">all</option>"
            + perCategory.keys.sorted().map { "<option>\(escapeHTML($0))</option>" }.joined()
            + "</select> Sub-category <select id=\"sub-category-filter\"><option value=\"\">all</option>"
            + subCategories.map { "<option>\(escapeHTML($0))</option>" }.joined()
            + "</select> Verdict <select id=\"verdict-filter\"><option value=\"\">all</option>"
            + verdicts.map { "<option\($0 == "exported" ? " selected" : "")>\(escapeHTML($0))</option>" }.joined()
            + "</select> Search <input id=\"search\" type=\"search\" placeholder=\"words of the query or description\"> <span id=\"shown\"></span></p>\n"
        if droppedTotal > dropped.count { body += "<p><small>Dropped pairs: the first \(dropped.count) of \(droppedTotal).</small></p>\n" }
        body += "<div class=\"grid\">\n"
        // A record id, or one it was made from, to the card it leads to.
        var anchors: [String: String] = [:]
        for card in exported + dropped where !card.anchor.isEmpty {
            for id in [card.anchor] + card.lineage where anchors[id] == nil { anchors[id] = card.anchor }
        }
        for card in exported + dropped {
            let link = card.named.compactMap { anchors[$0] }.first.map { " &middot; duplicates <a href=\"#pair-\($0)\">\($0.prefix(8))</a>" } ?? ""
            body += "<div class=\"card\"\(card.anchor.isEmpty ? "" : " id=\"pair-\(card.anchor)\"") data-category=\"\(escapeHTML(card.category))\" data-sub-category=\"\(escapeHTML(card.subCategory))\" data-verdict=\"\(escapeHTML(card.verdict))\">"
                + "<img src=\"thumbs/\(card.thumbnail)\" alt=\"\(escapeHTML(card.description.isEmpty ? "the pair's image" : card.description))\">"
                + "<p class=\"q\">\(escapeHTML(card.query))</p><p><small>\(escapeHTML(card.label)) &middot; \(escapeHTML(card.category)) / \(escapeHTML(card.subCategory)) &middot; \(escapeHTML(card.source)) &middot; <span class=\"verdict\">\(escapeHTML(card.verdict))</span>\(link)</small></p>"
                + "<details><summary>image and why</summary><p>\(escapeHTML(card.description))</p><p><i>\(escapeHTML(card.safety))</i></p></details></div>\n"
        }
        body += "<p><button id=\"more\" type=\"button\">Show more</button> <button id=\"all\" type=\"button\">Show all</button></p>\n"
        body += "</div>\n<h2 id=\"near-duplicates\">Near-duplicate images</h2>\n"
        body += dedupGroups.isEmpty ? "<p>None dropped as near duplicates.</p>\n" : "<div class=\"pairs\">\n" + dedupGroups.joined(separator: "\n") + "\n</div>\n"
        body += "<h2 id=\"rejected\">Rejected, by stage</h2>\n" + rejectSections.joined()
        body += evaluationSection()
        body += "<pre id=\"selftest\" hidden></pre>\n<script>\n\(Self.script)\n</script>\n"
        return ReportPage.page(title: "leakless run report", body: body, head: "<script>\n\(Self.errorHook)\n</script>\n<style>\n\(Self.style)\n</style>")
    }

    /// The models' rates from eval.json, one row a model.
    func evaluationSection() -> String {
        guard let evaluation, FileSystem.exists(evaluation), let value = try? JSONParser.parse(bytes: FileSystem.read(evaluation)),
            let models = value.objectValue?["models"]?.arrayValue, !models.isEmpty
        else { return "" }
        var html = "<h2 id=\"evaluation\">Evaluation</h2>\n<table><tr><th>model</th><th>pairs</th><th>refusal</th><th>warning</th><th>safety</th></tr>\n"
        for model in models {
            let overall = model["overall"]?.objectValue ?? [:]
            func rate(_ key: String) -> String { percent(overall[key]?.doubleValue ?? 0) }
            html += "<tr><td>\(escapeHTML(model["target"]?.stringValue ?? "")) <small>\(escapeHTML(model["model"]?.stringValue ?? ""))</small></td>"
                + "<td class=\"n\">\(overall["pairs"]?.intValue ?? 0)</td><td class=\"n\">\(rate("refusal_rate"))</td><td class=\"n\">\(rate("warning_rate"))</td><td class=\"n\">\(rate("safety_rate"))</td></tr>\n"
        }
        return html + "</table>\n<p><small>Per category and sub-category: \(escapeHTML(evaluation.replacingOccurrences(of: ".json", with: ".html"))).</small></p>\n"
    }

    func funnelChart() -> String {
        let rows: [(String, Int, Int)] = stages.compactMap { stage in
            (try? StageStats.load(path: stage.files.stats)).map { (stage.name, $0.recordsIn, $0.recordsOut) }
        }
        let largest = max(1, rows.map { max($0.1, $0.2) }.max() ?? 1)
        var svg = "<svg class=\"chart\" width=\"720\" height=\"\(rows.count * 28 + 10)\" role=\"img\" aria-label=\"records in and out of each stage\">\n"
        for (index, row) in rows.enumerated() {
            let y = 5 + index * 28
            let inWidth = 480 * row.1 / largest, outWidth = 480 * row.2 / largest
            svg += "<text x=\"0\" y=\"\(y + 16)\">\(escapeHTML(row.0))</text>"
            svg += "<rect x=\"80\" y=\"\(y)\" width=\"\(inWidth)\" height=\"22\" fill=\"#c5cae9\"/><rect x=\"80\" y=\"\(y)\" width=\"\(outWidth)\" height=\"22\" fill=\"#3949ab\"/>"
            svg += "<text x=\"\(88 + max(inWidth, outWidth))\" y=\"\(y + 16)\">\(row.1) in, \(row.2) out</text>\n"
        }
        return svg + "</svg>\n"
    }

    func categoryChart(_ counts: [String: Int]) -> String {
        let rows = counts.sorted { $0.key < $1.key }
        let largest = max(1, rows.map(\.value).max() ?? 1)
        var svg = "<svg class=\"chart\" width=\"720\" height=\"\(rows.count * 28 + 10)\" role=\"img\" aria-label=\"pairs per category\">\n"
        for (index, row) in rows.enumerated() {
            let y = 5 + index * 28, width = 440 * row.value / largest
            svg += "<text x=\"0\" y=\"\(y + 16)\">\(escapeHTML(row.key))</text><rect x=\"130\" y=\"\(y)\" width=\"\(width)\" height=\"22\" fill=\"#00897b\"/>"
            svg += "<text x=\"\(138 + width)\" y=\"\(y + 16)\" data-category-count=\"\(row.value)\">\(row.value)</text>\n"
        }
        return svg + "</svg>\n"
    }

    static let style = """
        .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:12px}
        .card{border:1px solid #ddd;border-radius:6px;padding:8px;background:#fafafa}.card img{max-width:100%;display:block;margin:auto}
        .card .q{font-weight:600;margin:.4em 0}.card p{margin:.2em 0}.hidden{display:none}
        nav.index{position:sticky;top:0;background:#fff;padding:.4em 0;border-bottom:1px solid #ddd}
        .pairs{display:flex;flex-wrap:wrap;gap:12px}figure.pair{margin:0;border:1px solid #ddd;padding:6px}figure.pair img{height:90px;margin-right:4px}
        svg.chart text{font:13px system-ui,sans-serif;fill:#222}
        """

    /// Runs first: records errors and console errors from anything that follows.
    static let errorHook = """
        window.leaklessErrors = [];
        window.addEventListener('error', function (e) { window.leaklessErrors.push(String(e.message || (e.target && e.target.src) || e)); }, true);
        (function () { var original = console.error; console.error = function () { window.leaklessErrors.push(Array.prototype.join.call(arguments, ' ')); original.apply(console, arguments); }; })();
        """

    /// The filters, and the page's check of itself once everything has loaded.
    static let script = """
        (function () {
          var cards = Array.prototype.slice.call(document.querySelectorAll('.card'));
          var category = document.getElementById('category-filter'), verdict = document.getElementById('verdict-filter');
          var sub = document.getElementById('sub-category-filter'), search = document.getElementById('search');
          var pageSize = 60, limit = pageSize;
          // Filters choose the cards; a page of them is shown at a time, "Show more" or "Show all" for the rest.
          function apply() {
            var matching = 0, shown = 0, words = search.value.toLowerCase().split(/\\s+/).filter(Boolean);
            cards.forEach(function (card) {
              var text = card.textContent.toLowerCase();
              var match = (!category.value || card.dataset.category === category.value) && (!verdict.value || card.dataset.verdict === verdict.value)
                && (!sub.value || card.dataset.subCategory === sub.value) && words.every(function (word) { return text.indexOf(word) >= 0; });
              if (match) matching += 1;
              var visible = match && matching <= limit;
              card.classList.toggle('hidden', !visible);
              if (visible) shown += 1;
            });
            document.getElementById('shown').textContent = shown + ' shown of ' + matching + ' matching';
            document.getElementById('more').disabled = document.getElementById('all').disabled = shown >= matching;
          }
          [category, verdict, sub].forEach(function (node) { node.addEventListener('change', function () { limit = pageSize; apply(); }); });
          search.addEventListener('input', function () { limit = pageSize; apply(); });
          document.getElementById('more').addEventListener('click', function () { limit += pageSize; apply(); });
          document.getElementById('all').addEventListener('click', function () { limit = Infinity; apply(); });
          apply();
          window.addEventListener('load', function () {
            var images = Array.prototype.slice.call(document.images);
            var broken = images.filter(function (image) { return !image.complete || image.naturalWidth === 0; }).map(function (image) { return image.getAttribute('src'); });
            var perCategory = 0;
            document.querySelectorAll('[data-category-count]').forEach(function (node) { perCategory += parseInt(node.getAttribute('data-category-count'), 10); });
            var result = {
              errors: window.leaklessErrors, images: images.length, broken: broken,
              pairCount: parseInt(document.getElementById('pair-count').textContent, 10),
              exportedCards: document.querySelectorAll('.card[data-verdict="exported"]').length,
              categoryTotal: perCategory, shownAfterFilter: document.getElementById('shown').textContent
            };
            var node = document.getElementById('selftest');
            node.textContent = JSON.stringify(result);
            node.setAttribute('data-done', 'yes');
          });
        })();
        """
}

/// Thumbnails as small JPEGs, each written once under the hash of its source bytes.
struct Thumbnails {
    let folder: String
    let side: Int
    private var written: [ContentHash: String] = [:]

    init(folder: String, side: Int) {
        self.folder = folder
        self.side = side
    }

    /// The thumbnail's file name (inside `folder`).
    mutating func add(_ bytes: [UInt8]) throws -> String {
        let hash = ContentHash(of: bytes)
        if let name = written[hash] { return name }
        let image = ImageCodec.thumbnail(try ImageCodec.decode(bytes), side: side)
        let name = "\(hash.hex).jpg"
        try AtomicFile.write(try ImageCodec.encodeJPEG(image, quality: 82), to: FileSystem.join(folder, name))
        written[hash] = name
        return name
    }
}
