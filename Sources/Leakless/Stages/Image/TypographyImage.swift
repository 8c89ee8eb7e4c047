import LeaklessCore
import LeaklessImaging
import LeaklessModels
import LeaklessTypography

/// Text drawn into images as a typography backend says (layout, text, font, size, width,
/// wrapping), with what was drawn recorded for provenance.
struct TypographicText: Sendable {
    let typography: Typography
    let text: String
    let backendName: String

    /// The typography backend's settings; the kind's defaults when none is given.
    init(_ given: BackendConfig?) throws {
        let settings = given ?? BackendConfig(name: "typography", kind: "typography", settings: [:])
        func setting(_ name: String) -> JSONValue {
            settings.settings[name] ?? BackendKind.typography.setting(name)?.defaultValue ?? .null
        }
        guard let layout = Typography.Layout(rawValue: setting("layout").stringValue ?? ""),
            let wrap = Typography.Wrap(rawValue: setting("wrap").stringValue ?? "")
        else { throw RecordError("typography backend '\(settings.name)': unknown layout or wrap") }
        typography = Typography(
            layout: layout, font: setting("font").stringValue ?? "", size: Int(setting("size").intValue ?? 64),
            width: Int(setting("width").intValue ?? 1024), wrap: wrap, margin: Int(setting("margin").intValue ?? 32),
            listItems: Int(setting("list_items").intValue ?? 3))
        text = setting("text").stringValue ?? "{phrase}"
        guard text.contains("{phrase}") else {
            throw RecordError("typography backend '\(settings.name)': 'text' must contain {phrase}, the element's key phrase")
        }
        backendName = settings.name
        // A font that is not installed fails here, before any record.
        _ = try draw(phrase: "leakless", layout: .typo, picture: nil)
    }

    /// `phrase` drawn in `layout` (the backend's unless given), over `picture` for sd_typo, at
    /// `width` (the backend's unless given).
    func draw(phrase: String, layout: Typography.Layout? = nil, picture: DecodedImage?, width: Int? = nil) throws -> (image: DecodedImage, provenance: JSONValue) {
        var typography = self.typography
        if let layout { typography.layout = layout }
        if let width { typography.width = width }
        let drawnText = text.replacingOccurrences(of: "{phrase}", with: phrase)
        let drawn: Typography.Drawn
        do {
            drawn = try typography.render(drawnText, picture: picture)
        } catch let error as TypographyError {
            throw RecordError("typography: \(error.description)")
        }
        return (drawn.image, .object([
            "text": .string(drawn.text), "layout": .string(typography.layout.rawValue), "font": .string(typography.font),
            "font_family": .string(drawn.fontFamily), "size": .int(Int64(typography.size)), "width": .int(Int64(typography.width)),
            "wrap": .string(typography.wrap.rawValue), "backend": .string(backendName),
        ]))
    }
}

extension Record {
    /// What typographic images draw: the element's name, or a record's own `key_phrase`.
    func keyPhrase() throws -> String {
        if let name = fields["element"]?["name"]?.stringValue, !name.isEmpty { return name }
        if let phrase = fields["key_phrase"]?.stringValue, !phrase.isEmpty { return phrase }
        throw RecordError("no key phrase to draw: the record has neither 'element.name' nor 'key_phrase'")
    }
}

/// The image record of a drawn image, stored in the blob store.
func typographicImage(_ image: DecodedImage, provenance: JSONValue, blobs: BlobStore, extra: [String: JSONValue] = [:]) throws -> JSONValue {
    let png = try ImageCodec.encodePNG(image)
    let hash = try blobs.store(png, format: .png)
    var fields: [String: JSONValue] = [
        "blob": .string(hash.hex), "format": "png", "width": .int(Int64(image.width)), "height": .int(Int64(image.height)),
        "method": "typography", "typography": provenance,
        "source": "drawn by leakless with Pango and Cairo",
        "license": "CC0-1.0 (text drawn by the pipeline; DejaVu fonts: Bitstream Vera licence, which places no restriction on images)",
    ]
    fields.merge(extra) { $1 }
    return .object(fields)
}

/// image, typography backend: every query's image is its key phrase drawn as text, in the
/// backend's layout (MM-SafetyBench TYPO, FigStep; SD_TYPO draws it under the best pool match).
struct TypographyImageStage: RecordStage {
    let text: TypographicText
    let blobs: BlobStore
    var retrieval: BuiltinImageStage?
    var drawn = 0

    init(context: StageContext, parameters: ImageStage.Parameters) throws {
        text = try TypographicText(context.backend("backend"))
        blobs = BlobStore(folder: context.blobs)
        if text.typography.layout == .sdTypo {
            retrieval = try BuiltinImageStage(context: context, parameters: parameters)
        }
    }

    var extraStats: [String: JSONValue] { ["typography": .int(Int64(drawn))] }

    mutating func process(_ record: Record) throws -> [StageOutput] {
        try record.requireKind(["query", "seed"])
        if let passed = ImageStage.passThrough(record) { return passed }
        let phrase = try record.keyPhrase()
        var picture: DecodedImage?
        var under: [String: JSONValue] = [:]
        if var retrieval {
            // The best picture whatever its score: SD_TYPO's picture is the key phrase's illustration.
            let match = try retrieval.bestPicture(for: record)
            picture = match.image
            under = ["under": match.provenance]
            self.retrieval = retrieval
        }
        let (image, provenance) = try text.draw(phrase: phrase, picture: picture)
        drawn += 1
        let fields = try typographicImage(image, provenance: provenance, blobs: blobs, extra: under)
        return [.record(record.derived { record in
            record["kind"] = "pair"
            record["source"] = "typography"
            record["image"] = fields
        })]
    }
}
