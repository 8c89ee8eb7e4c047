import Foundation
import LeaklessCore
import LeaklessNetwork

/// One reply of a chat model.
public struct ChatReply: Sendable {
    public let text: String
    /// The endpoint's own refusal field (OpenAI's `message.refusal`), or nil.
    public let refusal: String?
    public let finishReason: String
    public let promptTokens: Int
    public let completionTokens: Int
    /// The request's cache key, which is also what the provenance records.
    public let key: ContentHash
    public let cached: Bool

    public var replyHash: String { ContentHash(of: Array(text.utf8)).hex }
}

/// What a structured call came to.
public enum StructuredOutcome: Sendable {
    /// JSON that met the schema; `attempts` counts the asks (1 plus the re-asks).
    case value(JSONValue, reply: ChatReply, attempts: Int)
    /// The model declined.
    case refusal(String, reply: ChatReply)
    /// Still unusable after the last re-ask: the raw reply and what was wrong; `truncated` when
    /// the last reply was cut off at `max_tokens` (finish_reason `length`).
    case invalid(raw: String, problem: String, attempts: Int, truncated: Bool)
}

/// A client for the OpenAI-compatible `/chat/completions` wire format (OpenAI, vLLM, SGLang,
/// Ollama, llama.cpp's server, LM Studio): request bodies, replies, token usage, the reply cache
/// and the JSON mode the endpoint accepts.
/// `@unchecked Sendable`: the JSON mode learned from the endpoint is its one mutable field, read
/// and written only with `lock` held.
public final class ChatClient: @unchecked Sendable {
    public enum JSONMode: String, Sendable, CaseIterable {
        case jsonSchema = "json_schema"
        case jsonObject = "json_object"
        case text
    }

    public let backend: BackendConfig
    public let endpoint: Endpoint
    public let cache: ReplyCache
    public let meter: UsageMeter
    private let lock = NSLock()
    private var mode: JSONMode
    private let automaticMode: Bool

    public init(backend: BackendConfig, endpoint: Endpoint, cache: ReplyCache, meter: UsageMeter) {
        self.backend = backend
        self.endpoint = endpoint
        self.cache = cache
        self.meter = meter
        let configured = backend.typed.jsonMode
        automaticMode = configured == "auto" || configured.isEmpty
        mode = JSONMode(rawValue: configured) ?? .jsonSchema
    }

    public var model: String { backend.typed.model }
    public var maxReasks: Int { backend.typed.maxReasks }
    public var currentMode: JSONMode {
        lock.lock()
        defer { lock.unlock() }
        return mode
    }

    /// Sampling settings as sent and as keyed.
    private var parameters: [String: JSONValue] {
        var fields: [String: JSONValue] = [
            "temperature": backend.settings["temperature"] ?? .int(0),
            "max_tokens": backend.settings["max_tokens"] ?? .int(1024),
        ]
        if let seed = backend.settings["seed"], seed != .null { fields["seed"] = seed }
        return fields
    }

    private func responseFormat(_ mode: JSONMode, schema: JSONValue?, name: String) -> JSONValue? {
        guard let schema else { return nil }
        switch mode {
        case .jsonSchema:
            let safeName = String(name.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" ? $0 : "_" }.prefix(64))
            return .object(["type": "json_schema", "json_schema": .object(["name": .string(safeName.isEmpty ? "reply" : safeName), "schema": schema, "strict": false])])
        case .jsonObject:
            return .object(["type": "json_object"])
        case .text:
            return nil
        }
    }

    /// The response_format this client would send with a template's reply schema now.
    public func responseFormat(for template: PromptTemplate?) -> JSONValue? {
        responseFormat(currentMode, schema: template?.replySchema, name: template?.name ?? "reply")
    }

    /// The cache key: what decides the reply, and nothing that locates or authenticates.
    public func key(messages: [ChatMessage], format: JSONValue?, template: ContentHash?) -> ContentHash {
        ContentHash(ofJSON: .object([
            "wire": "openai-chat",
            "model": .string(model),
            "messages": .array(messages.map(\.keyed)),
            "parameters": .object(parameters),
            "response_format": format ?? .null,
            "template": template.map { .string($0.hex) } ?? .null,
        ]))
    }

    /// Estimated tokens of a request: about four characters a token, a fixed charge per image,
    /// and the whole completion allowance.
    public func estimate(_ messages: [ChatMessage]) -> (prompt: Int, completion: Int) {
        let characters = messages.reduce(0) { $0 + $1.text.utf8.count + 8 }
        let images = messages.reduce(0) { $0 + $1.images.count }
        return (characters / 4 + 1 + images * 800, backend.typed.maxTokens)
    }

    public func cost(prompt: Int, completion: Int) -> Double {
        (Double(prompt) * backend.typed.pricePrompt + Double(completion) * backend.typed.priceCompletion) / 1_000_000
    }

    /// One completion: from the cache when this exact request got a good reply before, else
    /// from the endpoint (and then cached at once).
    public func complete(_ messages: [ChatMessage], schema: JSONValue? = nil, template: PromptTemplate? = nil, http: CurlHTTP) throws -> ChatReply {
        while true {
            let mode = currentMode
            let format = responseFormat(mode, schema: schema, name: template?.name ?? "reply")
            let key = key(messages: messages, format: format, template: template?.hash)
            if let stored = cache.lookup(key), let reply = Self.reply(fromCache: stored, key: key) {
                meter.add("cache_hits")
                meter.add("cached_prompt_tokens", reply.promptTokens)
                meter.add("cached_completion_tokens", reply.completionTokens)
                return reply
            }
            // The same request in flight on another worker: wait for its reply, then read the cache.
            guard cache.inFlight.lead(key) else {
                meter.add("shared_in_flight")
                continue
            }
            defer { cache.inFlight.finish(key) }
            var body: [String: JSONValue] = parameters
            body["model"] = .string(model)
            body["messages"] = .array(messages.map(\.wire))
            if let format { body["response_format"] = format }
            let estimate = estimate(messages)
            let estimatedCost = cost(prompt: estimate.prompt, completion: estimate.completion)
            let reserved = estimate.prompt + estimate.completion
            guard meter.reserve(tokens: reserved, cost: estimatedCost) else { throw EndpointError.stopped }
            func release() {
                meter.settle(reservedTokens: reserved, reservedCost: estimatedCost, promptTokens: nil, completionTokens: nil, cost: 0)
            }
            let response: HTTPResponse
            do {
                response = try endpoint.post("/chat/completions", body: Array(JSONWriter.canonical(.object(body)).utf8),
                                             estimatedTokens: reserved, using: http)
            } catch EndpointError.rejected(let status, let url, let message) where [400, 422].contains(status) && automaticMode
                && mode != .text && schema != nil && Self.mentionsResponseFormat(message)
            {
                release()
                downgrade(from: mode, url: url)
                continue
            } catch EndpointError.rejected(let status, let url, let message)
                where Endpoint.refusesImages(message) && messages.contains(where: { !$0.images.isEmpty })
            {
                release()
                throw EndpointError.rejected(status: status, url: url, message: "\(message) (backend '\(backend.name)', model '\(model)', "
                    + "takes no images: declare a text model with vision: false, and give the roles that look at images a vision model)")
            } catch {
                release()
                throw error
            }
            let reply: ChatReply
            do {
                reply = try Self.reply(fromWire: response.body, key: key)
            } catch {
                release()
                throw EndpointError.rejected(status: response.status, url: CurlHTTP.redacted(endpoint.url("/chat/completions")),
                                             message: endpoint.scrub("\(error)"))
            }
            endpoint.limiter.settle(estimatedTokens: reserved, actualTokens: reply.promptTokens + reply.completionTokens)
            meter.settle(reservedTokens: reserved, reservedCost: estimatedCost,
                         promptTokens: reply.promptTokens, completionTokens: reply.completionTokens,
                         cost: cost(prompt: reply.promptTokens, completion: reply.completionTokens))
            meter.add("cache_misses")
            try cache.store(key, .object([
                "text": .string(reply.text), "refusal": reply.refusal.map(JSONValue.string) ?? .null,
                "finish_reason": .string(reply.finishReason),
                "prompt_tokens": .int(Int64(reply.promptTokens)), "completion_tokens": .int(Int64(reply.completionTokens)),
            ]))
            return reply
        }
    }

    private func downgrade(from mode: JSONMode, url: String) {
        lock.lock()
        defer { lock.unlock() }
        guard self.mode == mode else { return }
        self.mode = mode == .jsonSchema ? .jsonObject : .text
        meter.add("json_mode_downgrades")
        FileHandle.standardError.write(Data("note: \(url) does not take response_format \(mode.rawValue); using \(self.mode.rawValue)\n".utf8))
    }

    static func mentionsResponseFormat(_ message: String) -> Bool {
        let text = message.lowercased()
        return ["response_format", "json_schema", "json_object", "structured output", "guided_json"].contains { text.contains($0) }
    }

    /// Asks for JSON that meets the template's reply schema (and `check`, for what a schema
    /// cannot say); a reply that does not is answered with the problem and asked again, up to
    /// `max_reasks` times.
    public func structured(
        _ template: PromptTemplate, values: [String: String], images: [ImageAttachment] = [],
        check: (JSONValue) -> String? = { _ in nil }, http: CurlHTTP
    ) throws -> StructuredOutcome {
        var messages = try template.render(values, images: images)
        let schema = template.replySchema
        var attempts = 0
        while true {
            attempts += 1
            let reply = try complete(messages, schema: schema, template: template, http: http)
            if let refusal = reply.refusal, !refusal.isEmpty {
                meter.add("refusals")
                return .refusal(refusal, reply: reply)
            }
            let problem: String
            if let value = StructuredReply.extractJSON(reply.text) {
                if let schema, let violation = RecordSchema(schema).violation(in: value) {
                    problem = "the JSON does not match the schema \(violation)"
                } else if let violation = check(value) {
                    problem = violation
                } else {
                    return .value(value, reply: reply, attempts: attempts)
                }
            } else if reply.finishReason == "content_filter" || StructuredReply.looksLikeRefusal(reply.text) {
                meter.add("refusals")
                return .refusal(reply.text, reply: reply)
            } else {
                problem = reply.finishReason == "length" ? "the reply was cut off at max_tokens before the JSON ended"
                    : StructuredReply.syntaxProblem(reply.text) ?? "the reply holds no JSON object"
            }
            guard attempts <= maxReasks else {
                meter.add("invalid_replies")
                return .invalid(raw: reply.text, problem: problem, attempts: attempts, truncated: reply.finishReason == "length")
            }
            meter.add("reasks")
            messages.append(ChatMessage(role: "assistant", text: reply.text))
            var ask = "Your reply could not be used: \(problem). Reply again with only the JSON object"
            if let schema { ask += ", matching this JSON schema: \(JSONWriter.canonical(schema))" }
            messages.append(ChatMessage(role: "user", text: ask + "."))
        }
    }

    static func reply(fromCache stored: JSONValue, key: ContentHash) -> ChatReply? {
        guard let text = stored["text"]?.stringValue else { return nil }
        return ChatReply(
            text: text, refusal: stored["refusal"]?.stringValue, finishReason: stored["finish_reason"]?.stringValue ?? "stop",
            promptTokens: Int(stored["prompt_tokens"]?.intValue ?? 0), completionTokens: Int(stored["completion_tokens"]?.intValue ?? 0),
            key: key, cached: true)
    }

    struct WireError: Error, CustomStringConvertible {
        let description: String
    }

    /// A chat completion reply: choices[0].message.content (a string, or text parts), its
    /// refusal, finish_reason and usage.
    static func reply(fromWire body: [UInt8], key: ContentHash) throws -> ChatReply {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes: body)
        } catch {
            throw WireError(description: "the reply is not JSON: \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        guard let choice = value["choices"]?.arrayValue?.first, let message = choice["message"] else {
            throw WireError(description: "the reply has no choices[0].message: \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        var text = ""
        switch message["content"] {
        case .string(let content)?: text = content
        case .array(let parts)?: text = parts.compactMap { $0["text"]?.stringValue }.joined()
        default: text = ""
        }
        let refusal = message["refusal"]?.stringValue
        let usage = value["usage"]
        return ChatReply(
            text: text, refusal: refusal?.isEmpty == true ? nil : refusal,
            finishReason: choice["finish_reason"]?.stringValue ?? "stop",
            promptTokens: Int(usage?["prompt_tokens"]?.intValue ?? 0),
            completionTokens: Int(usage?["completion_tokens"]?.intValue ?? 0),
            key: key, cached: false)
    }
}
