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

    /// The prompt is longer than the model's context window: a property of this one request
    /// (llama.cpp's `exceed_context_size_error`, OpenAI's `context_length_exceeded`, vLLM's
    /// "maximum context length"), so that item is rejected and the stage goes on.
    var isContextOverflow: Bool {
        guard case .rejected(let status, _, let message) = self, status == 400 || status == 413 else { return false }
        let text = message.lowercased()
        return ["exceeds the available context size", "exceed_context_size", "context_length_exceeded", "maximum context length",
                "context length", "too many tokens", "prompt is too long"].contains { text.contains($0) }
    }
}

/// What a model stage does with each record. The stage that runs it (`ModelStage`) holds the
/// session and answers the runner; a step holds only what it reads (its prompts, its parameters),
/// so it is a checked Sendable value.
public protocol ModelStep: Sendable {
    /// The record's outputs: derived records, or rejects with reasons.
    func process(_ record: Record, worker: Int) throws -> [StageOutput]

    /// The first calls a record will make, rendered but not sent (for `leakless run --dry-run`);
    /// re-asks and later rounds depend on replies and are not counted.
    func plannedCalls(_ record: Record) throws -> [PlannedCall]
}

/// What a model step calls through: its stage's context and the session (connections, cache,
/// meter, budget) over the stage's network backends.
public struct ModelCalls: Sendable {
    public let context: StageContext
    public let session: ModelSession

    /// The session over the network backends of these roles.
    public init(_ context: StageContext, roles: [String]) throws {
        self.context = context
        session = try ModelSession(backends: roles.compactMap { context.network($0) }, cache: context.cache, budget: context.budget,
                                   requireKeys: !context.planning)
    }

    /// The network backend of `role`, which the step cannot do without.
    public func network(_ role: String) throws -> BackendConfig {
        guard let backend = context.network(role) else { throw RecordError("no network backend is given for '\(role)'") }
        return backend
    }

    /// The chat client of `role`'s backend.
    public func chat(_ role: String) throws -> ChatClient { session.chat(try network(role)) }

    /// The stage's prompt `name` (`stages/<stage>/<name>.prompt`), asked of `role`'s backend.
    /// `narrowing`: rules added to the reply schema's properties (see `PromptTemplate.narrowing`).
    public func prompt(_ name: String, role: String = "backend", narrowing: [String: [String: JSONValue]] = [:]) throws -> Prompt {
        Prompt(calls: self, client: try chat(role), template: try PromptTemplate.load(folder: context.templates, name: name).narrowing(narrowing))
    }

    /// How a reply came about, for the record and the export's provenance.
    public func provenance(_ client: ChatClient, _ template: PromptTemplate, _ reply: ChatReply, attempts: Int) -> JSONValue {
        .object([
            "backend": .string(client.backend.name), "endpoint_kind": .string(client.backend.kind),
            "model": .string(client.model), "template": .string(template.name), "template_hash": .string(template.hash.hex),
            "request": .string(reply.key.hex), "reply_hash": .string(reply.replyHash), "attempts": .int(Int64(attempts)),
        ])
    }
}

/// One prompt of a stage and the chat backend it is asked of.
public struct Prompt: Sendable {
    public let calls: ModelCalls
    public let client: ChatClient
    public let template: PromptTemplate

    /// The call rendered, not sent.
    public func planned(_ values: [String: String], images: [ImageAttachment] = []) throws -> PlannedCall {
        PlannedCall(chat: client, template: template, messages: try template.render(values, images: images), imagePrompt: nil)
    }

    /// A structured call whose refusal or unusable reply becomes the record's reject: the reply
    /// and its provenance, or the rejection.
    public func ask(
        _ values: [String: String], images: [ImageAttachment] = [], worker: Int, check: (JSONValue) -> String? = { _ in nil }
    ) throws -> Result<(JSONValue, JSONValue), StageRejection> {
        let outcome: StructuredOutcome
        do {
            outcome = try client.structured(template, values: values, images: images, check: check, http: calls.session.http(worker))
        } catch let error as EndpointError where error.isContentRefusal {
            return .failure(StageRejection(reason: "refusal", detail: "\(template.name): the endpoint's safety system declined: \(error)"))
        } catch let error as EndpointError where error.isContextOverflow {
            return .failure(StageRejection(reason: "too-long", detail: "\(template.name): the prompt does not fit the model's context: \(error)"))
        }
        switch outcome {
        case .value(let value, let reply, let attempts):
            return .success((value, calls.provenance(client, template, reply, attempts: attempts)))
        case .refusal(let text, _):
            return .failure(StageRejection(reason: "refusal", detail: "\(template.name): \(text)"))
        case .invalid(let raw, let problem, let attempts, let truncated):
            return .failure(StageRejection(reason: truncated ? "truncated" : "invalid-reply",
                                           detail: "\(template.name), \(attempts) attempt(s): \(problem); raw reply: \(raw)"))
        }
    }
}

/// A stage whose records wait on model endpoints: one step run on the concurrent runner's
/// workers, with the session's counters, stop reason and progress.
public final class ModelStage: ConcurrentRecordStage {
    public let calls: ModelCalls
    public let step: any ModelStep

    public init(_ calls: ModelCalls, step: any ModelStep) {
        self.calls = calls
        self.step = step
    }

    /// The stage of the step `make` builds over the session of `roles`.
    public convenience init(_ context: StageContext, roles: [String] = ["backend"], step make: (ModelCalls) throws -> any ModelStep) throws {
        let calls = try ModelCalls(context, roles: roles)
        self.init(calls, step: try make(calls))
    }

    public var session: ModelSession { calls.session }
    public var concurrency: Int { session.concurrency }
    public var stopReason: String? { session.stopReason }
    public var extraStats: [String: JSONValue] { ["model": session.stats] }
    public func requestStop(_ reason: String) { session.requestStop(reason) }
    public func process(_ record: Record, worker: Int) throws -> [StageOutput] { try step.process(record, worker: worker) }
    public func plannedCalls(_ record: Record) throws -> [PlannedCall] { try step.plannedCalls(record) }

    /// Requests sent, cache hits, tokens and spending (against the budget, where there is one).
    public var progressDetail: String {
        let meter = session.meter, spent = meter.spent, budget = meter.budget
        var parts = ["\(spent.requests) request(s)" + (budget.requests > 0 ? " of \(budget.requests)" : ""),
                     "\(meter["cache_hits"]) cached", "\(spent.tokens) tokens" + (budget.tokens > 0 ? " of \(budget.tokens)" : "")]
        if spent.usd > 0 || budget.usd > 0 {
            parts.append("\(String(format1: spent.usd, digits: 4)) USD" + (budget.usd > 0 ? " of \(String(format1: budget.usd, digits: 2))" : ""))
        }
        if session.retries > 0 { parts.append("\(session.retries) retries") }
        if let waiting = session.waiting { parts.append(waiting) }
        return parts.joined(separator: ", ")
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

func nonEmptyStrings(_ value: JSONValue?, field: String, count: Int) -> String? {
    guard let items = value?.arrayValue else { return "'\(field)' must be a list of strings" }
    let strings = items.compactMap { $0.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
    if strings.count < count { return "'\(field)' must hold \(count) non-empty strings, found \(strings.count)" }
    return nil
}

/// The pair's image from the blob store, as an attachment for a vision model.
func loadImage(_ record: Record, blobs: String) throws -> ImageAttachment {
    let image = try record.requireObject("image")
    guard let hex = image["blob"]?.stringValue, let hash = ContentHash(hex: hex),
        let format = image["format"]?.stringValue.flatMap(ImageFormat.init(rawValue:))
    else { throw RecordError("field 'image' needs 'blob' and 'format'") }
    let path = BlobStore(folder: blobs).path(for: hash, format: format)
    guard FileSystem.exists(path) else { throw RecordError("the image blob \(hex) is not in the blob store \(blobs)") }
    return ImageAttachment(bytes: try FileSystem.read(path), format: format)
}
