import Foundation
import LeaklessCore

/// Interchange with Label Studio: the pairs under review as its task JSON with a labeling config,
/// and its annotation export read back into review decisions.
public enum LabelStudio {
    /// How a task names its image.
    public enum Images: Sendable, Equatable {
        /// The image inline, as a `data:` URL (self-contained, larger).
        case dataURL
        /// A copy under the output folder, named by Label Studio's local-files route:
        /// `/data/local-files/?d=<path under the document root>`.
        case localFiles(documentRoot: String)
    }

    /// The labeling config the tasks are meant for: accept or reject with a reason, an edited
    /// query, and a free note.
    public static func labelConfig() -> String {
        var lines = [
            "<View>",
            "  <Image name=\"image\" value=\"$image\" maxWidth=\"560px\"/>",
            "  <Header value=\"Query\"/>",
            "  <Text name=\"query\" value=\"$query\"/>",
            "  <Header value=\"What the image shows\"/>",
            "  <Text name=\"image_description\" value=\"$image_description\"/>",
            "  <Text name=\"safety_reason\" value=\"$safety_reason\"/>",
            "  <Choices name=\"decision\" toName=\"query\" choice=\"single\" showInline=\"true\" required=\"true\">",
            "    <Choice value=\"accept\"/>",
            "    <Choice value=\"reject\"/>",
            "  </Choices>",
            "  <Choices name=\"reject_reason\" toName=\"query\" choice=\"single\" visibleWhen=\"choice-selected\" whenTagName=\"decision\" whenChoiceValue=\"reject\">",
        ]
        lines += ReviewSession.reasons.map { "    <Choice value=\"\(escapeHTML($0))\"/>" }
        lines += [
            "  </Choices>",
            "  <TextArea name=\"edited_query\" toName=\"query\" placeholder=\"The query, edited (leave empty to keep it)\" maxSubmissions=\"1\" editable=\"true\"/>",
            "  <TextArea name=\"note\" toName=\"query\" placeholder=\"A reason in your words\" maxSubmissions=\"1\" editable=\"true\"/>",
            "</View>",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes `tasks.json` and `label-config.xml` (and, for local files, `images/`) into
    /// `folder`, which is built beside and moved into place whole.
    @discardableResult
    public static func export(_ session: ReviewSession, to folder: String, images: Images) throws -> Int {
        let temporary = TemporaryName.beside(folder)
        try FileSystem.remove(temporary)
        try FileSystem.createDirectory(temporary)
        var tasks: [JSONValue] = []
        do {
            for (position, pair) in session.pairs.enumerated() {
                var data: [String: JSONValue] = ["pair_id": .string(pair.id)]
                for key in ["query", "image_description", "safety_reason", "category", "sub_category", "source"] {
                    data[key] = .string(pair.string(key) ?? "")
                }
                guard let image = pair["image"], let blob = image["blob"]?.stringValue, let format = image["format"]?.stringValue,
                    let file = try session.image(named: "\(blob).\(format)")
                else { throw RecordError("pair \(pair.id) has no image in the blob store") }
                switch images {
                case .dataURL:
                    data["image"] = .string("data:\(file.contentType);base64,\(Data(file.bytes).base64EncodedString())")
                case .localFiles(let root):
                    let name = "images/\(blob).\(format)"
                    try AtomicFile.write(file.bytes, to: FileSystem.join(temporary, name))
                    let relative = try relativePath(of: FileSystem.join(folder, name), under: root)
                    data["image"] = .string("/data/local-files/?d=\(relative.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? relative)")
                }
                tasks.append(["id": .int(Int64(position + 1)), "data": .object(data)])
            }
            try AtomicFile.write(JSONWriter.pretty(.array(tasks)), to: FileSystem.join(temporary, "tasks.json"))
            try AtomicFile.write(labelConfig(), to: FileSystem.join(temporary, "label-config.xml"))
            try FileSystem.replaceDirectory(folder, with: temporary)
        } catch {
            try? FileSystem.remove(temporary)
            throw error
        }
        return tasks.count
    }

    static func relativePath(of path: String, under root: String) throws -> String {
        let absolute = { (p: String) in URL(fileURLWithPath: p).standardizedFileURL.path }
        let file = absolute(path), base = absolute(root)
        guard file.hasPrefix(base.hasSuffix("/") ? base : base + "/") else {
            throw RecordError("the output folder must be inside the local-files document root \(root) (LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT)")
        }
        return String(file.dropFirst(base.count).drop { $0 == "/" })
    }

    /// The decisions in a Label Studio export (JSON, a list of tasks with `annotations`; or
    /// JSON-MIN, a row per annotation) that
    /// are not already the reviewer's current decision: importing the same file twice adds
    /// nothing. Cancelled (skipped) annotations are ignored. Every task must name a pair under
    /// review; an error names the file and the task.
    public static func decisions(fromExport path: String, session: ReviewSession, state: ReviewState) throws -> [ReviewDecision] {
        let value: JSONValue
        do { value = try JSONParser.parse(bytes: try FileSystem.read(path)) } catch let error as JSONParser.SyntaxError {
            throw LocatedError(path: path, line: nil, message: "invalid JSON: \(error.description)")
        }
        guard case .array(let tasks) = value else {
            throw LocatedError(path: path, line: nil, message: "a Label Studio JSON export is a list of tasks, found \(value.typeName)")
        }
        let queries = Dictionary(session.pairs.map { ($0.id, $0.string("query") ?? "") }, uniquingKeysWith: { first, _ in first })
        var decisions: [ReviewDecision] = []
        var pending = state
        for (number, task) in tasks.enumerated() {
            func fail(_ message: String) -> LocatedError {
                LocatedError(path: path, line: nil, message: "task \(number + 1)\(task["id"].map { " (id \(JSONWriter.canonical($0)))" } ?? ""): \(message)")
            }
            // JSON-MIN, Label Studio's flat export: one row per annotation, the data fields and
            // each control's answer side by side, the annotator in `annotator`.
            let flat = task["annotations"] == nil && (task["annotator"] != nil || task["annotation_id"] != nil)
            guard let pair = (flat ? task["pair_id"] : task["data"]?["pair_id"])?.stringValue else {
                throw fail("no \(flat ? "" : "data.")pair_id: these tasks were not exported by leakless review export")
            }
            guard let original = queries[pair] else { throw fail("pair \(pair) is not among the \(queries.count) pairs under review in this workdir") }
            let annotations = flat ? [task] : task["annotations"]?.arrayValue ?? []
            for annotation in annotations {
                if annotation["was_cancelled"]?.boolValue == true { continue }
                let reviewer = try reviewerName(flat ? annotation["annotator"] : annotation["completed_by"], fail: fail)
                var choice = "", reason = "", note = "", edited = ""
                func set(_ name: String, choices: [String], text: String) {
                    switch name {
                    case "decision": choice = choices.first ?? ""
                    case "reject_reason": reason = choices.first ?? ""
                    case "note": note = text
                    case "edited_query": edited = text
                    default: break
                    }
                }
                if flat {
                    for name in ["decision", "reject_reason", "note", "edited_query"] {
                        let value = annotation[name]
                        let strings = value?.stringValue.map { [$0] } ?? value?.stringArray ?? value?["choices"]?.stringArray ?? []
                        set(name, choices: strings, text: strings.joined(separator: " ").trimmingCharacters(in: .whitespacesAndNewlines))
                    }
                } else {
                    for result in annotation["result"]?.arrayValue ?? [] {
                        let text = (result["value"]?["text"]?.stringArray ?? []).joined(separator: " ").trimmingCharacters(in: .whitespacesAndNewlines)
                        set(result["from_name"]?.stringValue ?? "", choices: result["value"]?["choices"]?.stringArray ?? [], text: text)
                    }
                }
                let time = annotation["updated_at"]?.stringValue ?? annotation["created_at"]?.stringValue ?? ReviewDecision.now()
                let why = [reason, note].filter { !$0.isEmpty }.joined(separator: ": ")
                var decision: ReviewDecision
                switch choice {
                case "reject":
                    decision = ReviewDecision(pair: pair, reviewer: reviewer, action: .reject, reason: why, time: time, via: "label-studio")
                case "accept", "":
                    if !edited.isEmpty && edited != original {
                        decision = ReviewDecision(pair: pair, reviewer: reviewer, action: .edit, reason: why, query: edited, originalQuery: original, time: time, via: "label-studio")
                    } else if choice == "accept" {
                        decision = ReviewDecision(pair: pair, reviewer: reviewer, action: .accept, reason: why, time: time, via: "label-studio")
                    } else {
                        throw fail("an annotation by \(reviewer) has no 'decision' choice (accept or reject) and no edited query")
                    }
                default:
                    throw fail("'decision' must be accept or reject, found '\(choice)'")
                }
                if let current = pending.current(pair, reviewer: reviewer), current.action == decision.action,
                    current.reason == decision.reason, current.query == decision.query {
                    continue
                }
                pending.apply(decision)
                decisions.append(decision)
            }
        }
        return decisions
    }

    /// A Label Studio user as a reviewer's name: its email or username when the export expands
    /// it, else `label-studio-user-N` for its id.
    static func reviewerName(_ value: JSONValue?, fail: (String) -> LocatedError) throws -> String {
        let name: String
        switch value {
        case .int(let id)?: name = "label-studio-user-\(id)"
        case .string(let text)?: name = text
        case .object(let user)?:
            name = user["email"]?.stringValue ?? user["username"]?.stringValue ?? user["id"]?.intValue.map { "label-studio-user-\($0)" } ?? ""
        default: throw fail("an annotation has no 'completed_by'")
        }
        do { try ReviewDecision.checkReviewer(name) } catch let error as RecordError { throw fail(error.description) }
        return name
    }
}
