import Foundation
import LeaklessCore
import LeaklessNetwork

/// What a moderation endpoint said of one input.
public struct ModerationResult: Sendable {
    public let flagged: Bool
    /// The categories it flagged, by name.
    public let categories: [String]
    public let scores: [String: Double]
    public let cached: Bool
}

/// OpenAI's moderation wire format: `POST {base}/moderations` with `model` and `input` (a
/// string, or text and image parts), answered by `results[0]` with `flagged`, `categories`
/// and `category_scores`. Replies are cached by the request's content, like every model reply.
public final class ModerationClient: Sendable {
    public let backend: BackendConfig
    public let endpoint: Endpoint
    public let cache: ReplyCache
    public let meter: UsageMeter

    public init(backend: BackendConfig, endpoint: Endpoint, cache: ReplyCache, meter: UsageMeter) {
        self.backend = backend
        self.endpoint = endpoint
        self.cache = cache
        self.meter = meter
    }

    public func classify(_ text: String, image: ImageAttachment? = nil, http: CurlHTTP) throws -> ModerationResult {
        let input: JSONValue = image.map { image in
            [["type": "text", "text": .string(text)], ["type": "image_url", "image_url": ["url": .string(image.dataURL)]]]
        } ?? .string(text)
        let keyed: JSONValue = image.map { ["text": .string(text), "image": .string($0.hash.hex)] } ?? .string(text)
        let key = ContentHash(ofJSON: ["wire": "openai-moderation", "model": .string(backend.typed.model), "input": keyed])
        while true {
            if let stored = cache.lookup(key), let result = Self.result(stored, cached: true) {
                meter.add("cache_hits")
                return result
            }
            if cache.inFlight.lead(key) { break }
            meter.add("shared_in_flight")
        }
        defer { cache.inFlight.finish(key) }
        guard meter.reserve(tokens: 0, cost: 0) else { throw EndpointError.stopped }
        let response: HTTPResponse
        do {
            response = try endpoint.post("/moderations", body: Array(JSONWriter.canonical(["model": .string(backend.typed.model), "input": input]).utf8),
                                         estimatedTokens: 0, using: http)
        } catch {
            meter.settle(reservedTokens: 0, reservedCost: 0, promptTokens: nil, completionTokens: nil, cost: 0)
            throw error
        }
        meter.settle(reservedTokens: 0, reservedCost: 0, promptTokens: 0, completionTokens: 0, cost: 0)
        let value = try? JSONParser.parse(bytes: response.body)
        guard let first = value?["results"]?.arrayValue?.first, let result = Self.result(first, cached: false) else {
            throw EndpointError.rejected(status: response.status, url: CurlHTTP.redacted(endpoint.url("/moderations")),
                                         message: "the reply has no results[0] with 'flagged' and 'categories'")
        }
        meter.add("cache_misses")
        try cache.store(key, first)
        return result
    }

    static func result(_ value: JSONValue, cached: Bool) -> ModerationResult? {
        guard let flagged = value["flagged"]?.boolValue, let categories = value["categories"]?.objectValue else { return nil }
        let scores = (value["category_scores"]?.objectValue ?? [:]).compactMapValues(\.doubleValue)
        return ModerationResult(flagged: flagged, categories: categories.filter { $0.value.boolValue == true }.map(\.key).sorted(),
                                scores: scores, cached: cached)
    }
}
