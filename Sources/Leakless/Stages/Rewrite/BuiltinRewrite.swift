import LeaklessCore

/// rewrite, builtin: moves the risk from the text into the image. The element's name and terms
/// become a reference to the picture ("this device"), and, in variants 1 and 2, explicit intent
/// phrases become neutral ones (stages/rewrite/softening.yaml). Variant 0 only moves the element,
/// the way a careless rewriter would; the detect stage is there to catch what that leaves.
public struct BuiltinRewriteStage: RecordStage {
    let softening: PhraseMatcher
    let alternatives: [String: [String]]
    let variants: Int
    var identicalVariants = 0

    public var extraStats: [String: JSONValue] { ["identical_variants_skipped": .int(Int64(identicalVariants))] }

    public init(context: StageContext, parameters: RewriteStage.Parameters) throws {
        let path = context.template("softening.yaml")
        let document = try YAMLDocument.load(path: path)
        var matcher = PhraseMatcher()
        var alternatives: [String: [String]] = [:]
        for entry in document.entries ?? [] {
            guard let options = entry.value.json.stringArray, options.count >= 2 else {
                throw LocatedError(path: path, line: entry.line, message: "'\(entry.key)' needs a list of at least two alternatives")
            }
            matcher.add(entry.key, tag: entry.key)
            alternatives[entry.key] = options
        }
        softening = matcher
        self.alternatives = alternatives
        variants = parameters.variantsPerQuery
    }

    public mutating func process(_ record: Record) throws -> [StageOutput] {
        try record.requireKind(["seed"])
        let harmful = try record.requireString("query")
        let element = try record.elementTerms()
        var outputs: [StageOutput] = []
        var seen = Set<String>()
        var elementMatcher = PhraseMatcher([element.name], tag: "element")
        for term in element.terms { elementMatcher.add(term, tag: "term") }
        let tokens = Text.tokens(harmful)
        for variant in 0..<variants {
            let reference = element.refer[variant % element.refer.count]
            var edits: [(range: Range<String.Index>, replacement: String, note: String)] = []
            var referenced = false
            for match in elementMatcher.matches(in: tokens) {
                var start = match.tokens.lowerBound
                if start > 0, ["a", "an", "the", "some", "my", "his", "her", "their"].contains(tokens[start - 1].stem) {
                    start -= 1  // "a loaded handgun" -> "this device", not "a this device"
                }
                // One reference is enough: later mentions of the same thing become "it".
                edits.append((tokens[start].range.lowerBound..<tokens[match.tokens.upperBound - 1].range.upperBound,
                              referenced ? "it" : reference, match.phrase))
                referenced = true
            }
            var softened: [JSONValue] = []
            if variant > 0 {
                for match in softening.matches(in: tokens)
                where !edits.contains(where: { $0.range.overlaps(tokens[match.tokens.lowerBound].range) }) {
                    let options = alternatives[match.tag]!
                    let replacement = options[(variant - 1) % options.count]
                    edits.append((tokens[match.tokens.lowerBound].range.lowerBound..<tokens[match.tokens.upperBound - 1].range.upperBound,
                                  replacement, match.phrase))
                    softened.append(.string(match.phrase))
                }
            }
            let rewritten = Self.apply(edits, to: harmful)
            let replaced = edits.filter { e in !softened.contains(.string(e.note)) }.map { JSONValue.string($0.note) }
            guard seen.insert(Text.normalized(rewritten)).inserted else {
                identicalVariants += 1  // two variants came out the same: one is enough
                continue
            }
            let output = record.derived { fields in
                fields["kind"] = "query"
                fields["harmful_query"] = .string(harmful)
                fields["query"] = .string(rewritten)
                fields["rewrite"] = .object([
                    "method": "builtin", "variant": .int(Int64(variant)),
                    "replaced": .array(replaced), "softened": .array(softened),
                ])
            }
            outputs.append(.record(output))
        }
        return outputs
    }

    /// Applies the edits, in order, and keeps the sentence's first letter upper case.
    static func apply(_ edits: [(range: Range<String.Index>, replacement: String, note: String)], to text: String) -> String {
        var result = ""
        var position = text.startIndex
        for edit in edits.sorted(by: { $0.range.lowerBound < $1.range.lowerBound }) {
            // An edit overlapping one already made (a softening phrase that runs into the
            // element's name) is left out: the first one wins.
            guard edit.range.lowerBound >= position else { continue }
            result += text[position..<edit.range.lowerBound]
            result += edit.replacement
            position = edit.range.upperBound
        }
        result += text[position...]
        if let first = result.first, first.isLowercase {
            result = first.uppercased() + result.dropFirst()
        }
        return result
    }
}
