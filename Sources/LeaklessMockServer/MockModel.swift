import Foundation
import Leakless
import LeaklessCore
import LeaklessImaging

/// A stand-in for real model endpoints: answers `/v1/chat/completions` with replies that meet
/// the pipeline's prompts (each recognised by the fields its reply schema asks for, see `StageReplies`;
/// any other prompt sent with its reply schema gets a value made from it, see `SchemaReply`),
/// `/v1/images/generations` and `/sdapi/v1/txt2img` with small PNGs whose colour follows the
/// prompt. With `apiKey` set, a request without `Authorization: Bearer <key>` gets 401.
///
/// Chat replies behave as llama.cpp's server does with a real model: a reply longer than the
/// request's `max_tokens` is cut there with `finish_reason: "length"`; a prompt longer than
/// `contextTokens` gets 400 `exceed_context_size_error`; with `vision` false an image gets 500
/// "image input is not supported"; `message` has no `refusal` field.
public struct MockModel: Sendable {
    public var apiKey: String?
    public var latency: Double
    public var vision: Bool
    /// The context window in (mock) tokens; 0: unlimited.
    public var contextTokens: Int

    public init(apiKey: String? = nil, latency: Double = 0, vision: Bool = true, contextTokens: Int = 0) {
        self.apiKey = apiKey
        self.latency = latency
        self.vision = vision
        self.contextTokens = contextTokens
    }

    public func handle(_ request: MockRequest) -> MockAction {
        if let apiKey, request.headers["authorization"] != "Bearer \(apiKey)" {
            return .json(["error": ["message": "Incorrect API key provided.", "type": "invalid_request_error", "code": "invalid_api_key"]],
                         status: 401, delay: latency)
        }
        switch request.path {
        case "/v1/chat/completions":
            guard let body = request.json, let messages = body["messages"]?.arrayValue else {
                return .json(["error": ["message": "'messages' is a required property"]], status: 400)
            }
            let text = Self.lastUserText(messages)
            let seesImage = request.bodyText.contains("\"image_url\"")
            if seesImage && !vision {
                return .json(["error": ["code": 500, "message": "image input is not supported - hint: if this is unexpected, you may need to provide the mmproj",
                                        "type": "server_error"]], status: 500, delay: latency)
            }
            let promptTokens = Self.tokens(prompt: messages)
            if contextTokens > 0 && promptTokens > contextTokens {
                return .json(["error": ["code": 400, "message": .string("request (\(promptTokens) tokens) exceeds the available context size (\(contextTokens) tokens), try increasing it"),
                                        "type": "exceed_context_size_error", "n_prompt_tokens": .int(Int64(promptTokens)), "n_ctx": .int(Int64(contextTokens))]],
                             status: 400, delay: latency)
            }
            let reply = StageReplies.evaluation(text, withImage: seesImage)
                ?? Self.reply(to: text, seesImage: seesImage, model: body["model"]?.stringValue ?? "", schema: SchemaReply.schema(ofRequest: body))
            let maxTokens = Int(body["max_tokens"]?.intValue ?? 0)
            if maxTokens > 0 && reply.utf8.count / 4 + 1 > maxTokens {
                // Cut where usage counts exactly max_tokens completion tokens.
                let cut = String(decoding: reply.utf8.prefix((maxTokens - 1) * 4), as: UTF8.self)
                return .json(Self.chatReply(cut, prompt: messages, finishReason: "length"), delay: latency)
            }
            return .json(Self.chatReply(reply, prompt: messages), delay: latency)
        case "/v1/images/generations":
            let prompt = request.json?["prompt"]?.stringValue ?? ""
            return .json(["created": 0, "data": [["b64_json": .string(Self.pngBase64(for: prompt))]]], delay: latency)
        case "/sdapi/v1/txt2img":
            let prompt = request.json?["prompt"]?.stringValue ?? ""
            let seed = request.json?["seed"] ?? .int(-1)
            let info = JSONWriter.canonical(["seed": seed, "prompt": .string(prompt)])
            return .json(["images": [.string(Self.pngBase64(for: prompt))], "parameters": [:], "info": .string(info)], delay: latency)
        default:
            return .json(["error": ["message": .string("no route \(request.path)")]], status: 404)
        }
    }

    public static func lastUserText(_ messages: [JSONValue]) -> String {
        guard let last = messages.last(where: { $0["role"]?.stringValue == "user" }) else { return "" }
        if let text = last["content"]?.stringValue { return text }
        return last["content"]?.arrayValue?.compactMap { $0["text"]?.stringValue }.joined(separator: "\n") ?? ""
    }

    /// A prompt's tokens, counted at four characters a token.
    static func tokens(prompt: [JSONValue]) -> Int {
        prompt.reduce(0) { $0 + JSONWriter.canonical($1).utf8.count } / 4 + 1
    }

    /// A chat completion body around `text`, with usage counted at four characters a token.
    public static func chatReply(_ text: String, prompt: [JSONValue], finishReason: String = "stop", refusal: String? = nil) -> JSONValue {
        let promptTokens = tokens(prompt: prompt)
        let completionTokens = text.utf8.count / 4 + 1
        var message: [String: JSONValue] = ["role": "assistant", "content": .string(text)]
        if let refusal { message["refusal"] = .string(refusal) }
        return [
            "id": "chatcmpl-mock", "object": "chat.completion", "model": "mock",
            "choices": [[
                "index": 0, "finish_reason": .string(finishReason), "message": .object(message),
            ]],
            "usage": ["prompt_tokens": .int(Int64(promptTokens)), "completion_tokens": .int(Int64(completionTokens)),
                      "total_tokens": .int(Int64(promptTokens + completionTokens))],
        ]
    }

    /// A reply that meets whichever of the pipeline's prompts this is: each stage answers for
    /// its own prompts; a prompt none recognises that names its reply schema gets a value made
    /// from the schema.
    public static func reply(to prompt: String, seesImage: Bool = false, model: String = "", schema: JSONValue? = nil) -> String {
        for replier in StageReplies.all {
            if let value = replier(prompt) { return JSONWriter.canonical(value) }
        }
        if let schema { return JSONWriter.canonical(SchemaReply.value(meeting: schema, prompt: prompt)) }
        // Anything else is an instruction of the evaluation, answered as a target model would.
        return StageReplies.target(prompt, withImage: seesImage, model: model)
    }

    /// A 32x32 PNG whose colour is taken from the prompt's hash.
    public static func pngBase64(for prompt: String) -> String {
        let hash = ContentHash(of: Array(prompt.utf8)).hex
        let bytes = Array(hash.utf8)
        var pixels: [UInt8] = []
        for y in 0..<32 {
            for x in 0..<32 {
                pixels += [bytes[0] &* UInt8(x % 7 + 1), bytes[1] &+ UInt8(y), bytes[2] &* 3]
            }
        }
        let png = (try? ImageCodec.encodePNG(DecodedImage(width: 32, height: 32, channels: 3, pixels: pixels))) ?? []
        return Data(png).base64EncodedString()
    }
}
