import Foundation
import LeaklessCore
import LeaklessImaging
import LeaklessModels
import LeaklessNetwork

extension EndpointError: StopSignal {
    public var stopsWork: Bool {
        if case .stopped = self { return true }
        return false
    }

    /// A provider's safety system declining a request (OpenAI's images API answers 400, Azure
    /// "content_filter"): a refusal of that one item, not a broken configuration.
    var isContentRefusal: Bool {
        guard case .rejected(let status, _, let message) = self, status == 400 else { return false }
        let text = message.lowercased()
        return ["safety system", "content_policy", "content policy", "content filter", "content_filter", "moderation"].contains { text.contains($0) }
    }
}

/// What the model stages share: the session (connections, cache, meter), the stage's prompts,
/// and the provenance written onto each record.
open class ModelStage: ConcurrentRecordStage {
    public let context: StageContext
    public let session: ModelSession
    public var concurrency: Int { session.concurrency }
    public var stopReason: String? { session.stopReason }
    public var extraStats: [String: JSONValue] { ["model": session.stats] }
    public func requestStop(_ reason: String) { session.requestStop(reason) }

    public init(context: StageContext, session: ModelSession) {
        self.context = context
        self.session = session
    }

    /// The session of a stage over the network backends of these roles.
    public static func session(_ context: StageContext, roles: [String]) throws -> ModelSession {
        try ModelSession(backends: roles.compactMap { context.network($0) }, cache: context.cache, budget: context.budget,
                         requireKeys: !context.planning)
    }

    open func process(_ record: Record, worker: Int) throws -> [StageOutput] { [] }

    /// The first calls a record will make, rendered but not sent (for `leakless run --dry-run`);
    /// re-asks and later rounds depend on replies and are not counted.
    open func plannedCalls(_ record: Record) throws -> [PlannedCall] { [] }

    func planned(_ client: ChatClient, _ template: PromptTemplate, _ values: [String: String], images: [ImageAttachment] = []) throws -> PlannedCall {
        PlannedCall(chat: client, template: template, messages: try template.render(values, images: images), imagePrompt: nil)
    }

    /// How a reply came about, for the record and the export's provenance.
    public func provenance(_ client: ChatClient, _ template: PromptTemplate, _ reply: ChatReply, attempts: Int) -> JSONValue {
        .object([
            "backend": .string(client.backend.name), "endpoint_kind": .string(client.backend.kind),
            "model": .string(client.model), "template": .string(template.name), "template_hash": .string(template.hash.hex),
            "request": .string(reply.key.hex), "reply_hash": .string(reply.replyHash), "attempts": .int(Int64(attempts)),
        ])
    }

    /// A structured call whose refusal or unusable reply becomes the record's reject.
    public func ask(
        _ client: ChatClient, _ template: PromptTemplate, values: [String: String], images: [ImageAttachment] = [],
        record: Record, worker: Int, check: (JSONValue) -> String? = { _ in nil }
    ) throws -> Result<(JSONValue, JSONValue), StageRejection> {
        let outcome: StructuredOutcome
        do {
            outcome = try client.structured(template, values: values, images: images, check: check, http: session.http(worker))
        } catch let error as EndpointError where error.isContentRefusal {
            return .failure(StageRejection(reason: "refusal", detail: "\(template.name): the endpoint's safety system declined: \(error)"))
        }
        switch outcome {
        case .value(let value, let reply, let attempts):
            return .success((value, provenance(client, template, reply, attempts: attempts)))
        case .refusal(let text, _):
            return .failure(StageRejection(reason: "refusal", detail: "\(template.name): \(text)"))
        case .invalid(let raw, let problem, let attempts):
            return .failure(StageRejection(reason: "invalid-reply", detail: "\(template.name), \(attempts) attempt(s): \(problem); raw reply: \(raw)"))
        }
    }
}

/// One model call a record will make.
public struct PlannedCall {
    public let chat: ChatClient?
    public let template: PromptTemplate?
    public let messages: [ChatMessage]
    /// For an image generation: its prompt (when known before the call).
    public let imagePrompt: String?
}

public struct StageRejection: Error {
    public let reason: String
    public let detail: String
}

extension StageRejection {
    func output(_ record: Record) -> [StageOutput] { [.reject(record, reason: reason, detail: detail)] }
}

/// A stage that asks one prompt per record (`stages/<stage>/<prompt>.prompt`) of its
/// `backend`; subclasses give the slot values and read the reply.
open class PromptStage: ModelStage {
    public let client: ChatClient
    public let template: PromptTemplate

    public init(context: StageContext, prompt: String) throws {
        let session = try Self.session(context, roles: ["backend"])
        client = session.chat(context.network("backend")!)
        template = try PromptTemplate.load(folder: context.templates, name: prompt)
        super.init(context: context, session: session)
    }

    /// The prompt's slot values for a record; a missing field is a RecordError.
    open func values(_ record: Record) throws -> [String: String] { [:] }

    /// Images sent with the prompt.
    open func images(_ record: Record) throws -> [ImageAttachment] { [] }

    public override func plannedCalls(_ record: Record) throws -> [PlannedCall] {
        [try planned(client, template, try values(record), images: try images(record))]
    }

    /// The stage's prompt for this record, asked.
    func ask(_ record: Record, worker: Int, check: (JSONValue) -> String? = { _ in nil }) throws -> Result<(JSONValue, JSONValue), StageRejection> {
        try ask(client, template, values: try values(record), images: try images(record), record: record, worker: worker, check: check)
    }
}

func nonEmptyStrings(_ value: JSONValue?, field: String, count: Int) -> String? {
    guard let items = value?.arrayValue else { return "'\(field)' must be a list of strings" }
    let strings = items.compactMap { $0.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
    if strings.count < count { return "'\(field)' must hold \(count) non-empty strings, found \(strings.count)" }
    return nil
}

/// extract, model: the paper's generation path. A red-teaming prompt gets the category,
/// sub-category and one harmful element, and returns an image description that shows it, why
/// it is risky, and harmful queries.
public final class ModelExtractStage: PromptStage {
    let count: Int

    public init(context: StageContext) throws {
        count = context.int("queries_per_element")
        try super.init(context: context, prompt: "generate")
    }

    public override func values(_ record: Record) throws -> [String: String] {
        try record.requireKind(["element"])
        let element = try record.requireObject("element")
        return [
            "category": try record.requireString("category"), "sub_category": try record.requireString("sub_category"),
            "definition": record.fields["definition"]?.stringValue ?? "", "element": element["name"]?.stringValue ?? "",
            "element_kind": element["kind"]?.stringValue ?? "object", "count": String(count),
        ]
    }

    public override func process(_ record: Record, worker: Int) throws -> [StageOutput] {
        switch try ask(record, worker: worker, check: { nonEmptyStrings($0["queries"], field: "queries", count: 1) }) {
        case .failure(let rejection): return rejection.output(record)
        case .success(let (reply, provenance)):
            let queries = reply["queries"]!.stringArray!.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
            return queries.prefix(count).map { query in
                .record(record.derived { fields in
                    fields["kind"] = "seed"
                    fields["source"] = "generation"
                    fields["image_description"] = reply["image_description"]!
                    fields["safety_reason"] = reply["safety_reason"]!
                    fields["query"] = .string(query)
                    fields["extract"] = provenance
                    fields.removeValue(forKey: "definition")
                })
            }
        }
    }
}

/// rewrite, model: revised queries that make a request only together with the image.
public final class ModelRewriteStage: PromptStage {
    let variants: Int

    public init(context: StageContext) throws {
        variants = context.int("variants_per_query")
        try super.init(context: context, prompt: "rewrite")
    }

    public override func values(_ record: Record) throws -> [String: String] {
        try record.requireKind(["seed"])
        return ["image_description": try record.requireString("image_description"), "query": try record.requireString("query"),
                "count": String(variants)]
    }

    public override func process(_ record: Record, worker: Int) throws -> [StageOutput] {
        let harmful = try values(record)["query"]!
        switch try ask(record, worker: worker, check: { nonEmptyStrings($0["revised_queries"], field: "revised_queries", count: 1) }) {
        case .failure(let rejection): return rejection.output(record)
        case .success(let (reply, provenance)):
            var seen = Set<String>()
            var outputs: [StageOutput] = []
            for (variant, query) in reply["revised_queries"]!.stringArray!.prefix(variants).enumerated() {
                let text = query.trimmingCharacters(in: .whitespacesAndNewlines)
                guard !text.isEmpty, seen.insert(Text.normalized(text)).inserted else { continue }
                outputs.append(.record(record.derived { fields in
                    fields["kind"] = "query"
                    fields["harmful_query"] = .string(harmful)
                    fields["query"] = .string(text)
                    var rewrite = provenance.objectValue ?? [:]
                    rewrite["method"] = "model"
                    rewrite["variant"] = .int(Int64(variant))
                    fields["rewrite"] = .object(rewrite)
                }))
            }
            return outputs
        }
    }
}

/// detect, model: the LLM VSIL detector. Keeps a revised query when the text alone is not
/// harmful, the text with the image is, and the revision kept its meaning.
public final class ModelDetectStage: PromptStage {
    public init(context: StageContext) throws {
        try super.init(context: context, prompt: "judge")
    }

    public override func values(_ record: Record) throws -> [String: String] {
        try record.requireKind(["query"])
        return [
            "image_description": try record.requireString("image_description"), "query": try record.requireString("query"),
            "harmful_query": record.fields["harmful_query"]?.stringValue ?? "",
        ]
    }

    public override func process(_ record: Record, worker: Int) throws -> [StageOutput] {
        switch try ask(record, worker: worker) {
        case .failure(let rejection): return rejection.output(record)
        case .success(let (judgement, provenance)):
            let reason = judgement["reason"]?.stringValue ?? ""
            if judgement["text_harmful"]?.boolValue == true {
                return [.reject(record, reason: "harmful-alone", detail: "the query alone is an unsafe request: \(reason)")]
            }
            if judgement["meaningful"]?.boolValue == false {
                return [.reject(record, reason: "meaningless", detail: "the revision lost the request's meaning: \(reason)")]
            }
            if judgement["pair_harmful"]?.boolValue == false {
                return [.reject(record, reason: "pair-not-harmful", detail: "the query with the image is not risky: \(reason)")]
            }
            return [.record(record.derived { fields in
                var detection = provenance.objectValue ?? [:]
                detection["detector"] = "llm-judge"
                detection["verdict"] = "clean"
                detection["judgement"] = judgement
                fields["detection"] = .object(detection)
            })]
        }
    }
}

/// filter, model: the final pair check with the real image. Keeps pairs a vision model finds
/// meaningful together and risky together.
public final class ModelFilterStage: PromptStage {
    public init(context: StageContext) throws {
        try super.init(context: context, prompt: "pair")
    }

    public override func values(_ record: Record) throws -> [String: String] {
        try record.requireKind(["pair"])
        return [
            "query": try record.requireString("query"), "image_description": try record.requireString("image_description"),
            "safety_reason": record.fields["safety_reason"]?.stringValue ?? "",
        ]
    }

    public override func images(_ record: Record) throws -> [ImageAttachment] {
        [try loadImage(record, blobs: context.blobs)]
    }

    public override func process(_ record: Record, worker: Int) throws -> [StageOutput] {
        switch try ask(record, worker: worker) {
        case .failure(let rejection): return rejection.output(record)
        case .success(let (verdict, provenance)):
            let reason = verdict["reason"]?.stringValue ?? ""
            if verdict["meaningful"]?.boolValue != true {
                return [.reject(record, reason: "not-meaningful", detail: "query and image do not make one request: \(reason)")]
            }
            if verdict["risky_together"]?.boolValue != true {
                return [.reject(record, reason: "not-risky", detail: "the pair is not a risky request: \(reason)")]
            }
            return [.record(record.derived { fields in
                var filter = provenance.objectValue ?? [:]
                filter["verdict"] = verdict
                fields["filter"] = .object(filter)
            })]
        }
    }
}

/// The pair's image from the blob store, as an attachment for a vision model.
func loadImage(_ record: Record, blobs: String) throws -> ImageAttachment {
    let image = try record.requireObject("image")
    guard let hex = image["blob"]?.stringValue, let hash = ContentHash(hex: hex),
        let format = image["format"]?.stringValue.flatMap(ImageFormat.init(rawValue:))
    else { throw RecordError("field 'image' needs 'blob' and 'format'") }
    let path = BlobStore(folder: blobs).path(for: hash, format: format)
    guard FileSystem.exists(path) else { throw RecordError("the image blob \(hex) is not in the blob store \(blobs)") }
    return ImageAttachment(bytes: try FileSystem.read(path), mimeType: format == .png ? "image/png" : "image/jpeg")
}

/// image, generation: the paper's loop. A chat model turns the description into a
/// text-to-image prompt; the image endpoint draws it; a vision model checks the picture clearly
/// shows the risky object or scene and, when it does not, writes a refined prompt; at most
/// `max_rounds` rounds, each kept in the record's history.
public final class GenerateImageStage: ModelStage {
    let images: ImageClient
    let writer: (ChatClient, PromptTemplate)?
    let verifier: (ChatClient, PromptTemplate)?
    let rounds: Int

    public init(context: StageContext) throws {
        let session = try Self.session(context, roles: ["backend", "prompt_writer", "verifier"])
        images = session.images(context.network("backend")!, blobs: context.blobs)
        writer = try context.network("prompt_writer").map { (session.chat($0), try PromptTemplate.load(folder: context.templates, name: "t2i")) }
        verifier = try context.network("verifier").map { (session.chat($0), try PromptTemplate.load(folder: context.templates, name: "verify")) }
        rounds = max(1, context.int("max_rounds"))
        super.init(context: context, session: session)
    }

    func values(_ record: Record) throws -> [String: String] {
        try record.requireKind(["query", "seed"])
        return [
            "image_description": try record.requireString("image_description"), "safety_reason": record.fields["safety_reason"]?.stringValue ?? "",
            "category": record.fields["category"]?.stringValue ?? "", "sub_category": record.fields["sub_category"]?.stringValue ?? "",
        ]
    }

    public override func plannedCalls(_ record: Record) throws -> [PlannedCall] {
        let values = try values(record)
        var calls: [PlannedCall] = []
        if let (client, template) = writer { calls.append(try planned(client, template, values)) }
        calls.append(PlannedCall(chat: nil, template: nil, messages: [], imagePrompt: writer == nil ? values["image_description"] : nil))
        if let (client, template) = verifier {
            var verifyValues = values
            verifyValues["prompt"] = "(the text-to-image prompt)"
            calls.append(try planned(client, template, verifyValues))
        }
        return calls
    }

    public override func process(_ record: Record, worker: Int) throws -> [StageOutput] {
        let values = try values(record)
        let description = values["image_description"]!
        var prompt = description
        var promptProvenance: JSONValue = .null
        if let (client, template) = writer {
            switch try ask(client, template, values: values, record: record, worker: worker, check: { nonEmptyStrings(.array([$0["prompt"] ?? .null]), field: "prompt", count: 1) }) {
            case .failure(let rejection): return rejection.output(record)
            case .success(let (reply, provenance)):
                prompt = reply["prompt"]!.stringValue!
                promptProvenance = provenance
            }
        }
        var history: [JSONValue] = []
        for round in 1...rounds {
            let image: GeneratedImage
            do {
                image = try images.generate(prompt: prompt, http: session.http(worker))
            } catch let error as EndpointError where error.isContentRefusal {
                return [.reject(record, reason: "refusal", detail: "round \(round): the image endpoint declined: \(error)")]
            }
            var step: [String: JSONValue] = ["round": .int(Int64(round)), "prompt": .string(prompt), "blob": .string(image.blob.hex)]
            var accepted = true
            if let (client, template) = verifier {
                let attachment = ImageAttachment(
                    bytes: try FileSystem.read(BlobStore(folder: context.blobs).path(for: image.blob, format: image.format)),
                    mimeType: image.format == .png ? "image/png" : "image/jpeg")
                var verifyValues = values
                verifyValues["prompt"] = prompt
                switch try ask(client, template, values: verifyValues, images: [attachment], record: record, worker: worker) {
                case .failure(let rejection): return rejection.output(record)
                case .success(let (verdict, provenance)):
                    accepted = verdict["shows_risk"]?.boolValue == true
                    step["verdict"] = verdict
                    step["verifier"] = provenance
                    if !accepted, let refined = verdict["refined_prompt"]?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines), !refined.isEmpty {
                        prompt = refined
                    }
                }
            }
            history.append(.object(step))
            if accepted {
                return [.record(record.derived { fields in
                    fields["kind"] = "pair"
                    fields["image"] = .object([
                        "blob": .string(image.blob.hex), "format": .string(image.format.rawValue),
                        "width": .int(Int64(image.width)), "height": .int(Int64(image.height)),
                        "method": "generation", "source": .string("generated by \(images.backend.name)"),
                        "license": .string("model output: see the terms of \(images.backend.string("model").isEmpty ? images.backend.kind : images.backend.string("model"))"),
                        "generation": image.generation, "prompt_writer": promptProvenance,
                        "rounds": .int(Int64(round)), "history": .array(history),
                    ])
                })]
            }
        }
        return [.reject(record, reason: "image-not-verified",
                        detail: "after \(rounds) round(s) the verifier never saw the risk; prompts: \(history.compactMap { $0["prompt"]?.stringValue }.joined(separator: " | "))")]
    }
}
