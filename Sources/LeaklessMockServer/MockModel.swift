import Foundation
import Leakless
import LeaklessCore
import LeaklessImaging

/// A stand-in for real model endpoints: answers `/v1/chat/completions` with replies that meet
/// the pipeline's prompts (each stage recognises its own, see `PipelineStage.mockReply`),
/// `/v1/images/generations` and `/sdapi/v1/txt2img` with small PNGs whose colour follows the
/// prompt. With `apiKey` set, a request without `Authorization: Bearer <key>` gets 401.
public struct MockModel: Sendable {
    public var apiKey: String?
    public var latency: Double

    public init(apiKey: String? = nil, latency: Double = 0) {
        self.apiKey = apiKey
        self.latency = latency
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
            return .json(Self.chatReply(Evaluation.mockReply(to: text, withImage: seesImage) ?? Self.reply(to: text, seesImage: seesImage), prompt: messages),
                         delay: latency)
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

    /// A chat completion body around `text`, with usage counted at four characters a token.
    public static func chatReply(_ text: String, prompt: [JSONValue], finishReason: String = "stop", refusal: String? = nil) -> JSONValue {
        let promptCharacters = prompt.reduce(0) { $0 + JSONWriter.canonical($1).utf8.count }
        let promptTokens = promptCharacters / 4 + 1
        let completionTokens = text.utf8.count / 4 + 1
        return [
            "id": "chatcmpl-mock", "object": "chat.completion", "model": "mock",
            "choices": [[
                "index": 0, "finish_reason": .string(finishReason),
                "message": ["role": "assistant", "content": .string(text), "refusal": refusal.map(JSONValue.string) ?? .null],
            ]],
            "usage": ["prompt_tokens": .int(Int64(promptTokens)), "completion_tokens": .int(Int64(completionTokens)),
                      "total_tokens": .int(Int64(promptTokens + completionTokens))],
        ]
    }

    /// A reply that meets whichever of the pipeline's prompts this is: each stage answers for
    /// its own prompts.
    public static func reply(to prompt: String, seesImage: Bool = false) -> String {
        for stage in StageRegistry.all {
            if let value = stage.mockReply(to: prompt) { return JSONWriter.canonical(value) }
        }
        if let value = ExpandElementsStage.mockReply(to: prompt) { return JSONWriter.canonical(value) }
        // Anything else is an instruction of the evaluation, answered as a target model would.
        return Evaluation.mockTargetReply(to: prompt, withImage: seesImage)
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
