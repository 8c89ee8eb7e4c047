import Foundation
import LeaklessCore
import LeaklessImaging
import LeaklessNetwork

/// A generated image, stored in the blob store, with everything that made it.
public struct GeneratedImage: Sendable {
    public let blob: ContentHash
    public let format: ImageFormat
    public let width: Int
    public let height: Int
    /// The wire format, model and sampling settings, and the prompt.
    public let generation: JSONValue
    public let cached: Bool
}

/// Text-to-image over the two wire formats in common use: the OpenAI images API
/// (`POST {base}/images/generations`, b64_json) and Stable Diffusion WebUI's
/// (`POST {base}/sdapi/v1/txt2img`, as AUTOMATIC1111 and Forge serve it).
public final class ImageClient: Sendable {
    public let backend: BackendConfig
    public let endpoint: Endpoint
    public let cache: ReplyCache
    public let meter: UsageMeter
    public let blobFolder: String

    public init(backend: BackendConfig, endpoint: Endpoint, cache: ReplyCache, meter: UsageMeter, blobFolder: String) {
        self.backend = backend
        self.endpoint = endpoint
        self.cache = cache
        self.meter = meter
        self.blobFolder = blobFolder
    }

    var path: String { backend.kind == "sd-webui" ? "/sdapi/v1/txt2img" : "/images/generations" }

    /// The settings recorded with each image (and keyed): all that changes the picture.
    public var settings: JSONValue {
        guard case .object(var fields) = backend.identity else { return backend.identity }
        fields.removeValue(forKey: "kind")
        fields["wire"] = .string(backend.kind)
        return .object(fields)
    }

    func body(prompt: String) -> JSONValue {
        if backend.kind == "sd-webui" {
            var body: [String: JSONValue] = [
                "prompt": .string(prompt), "negative_prompt": .string(backend.string("negative_prompt")),
                "width": .int(Int64(backend.int("width"))), "height": .int(Int64(backend.int("height"))),
                "steps": .int(Int64(backend.int("steps"))), "cfg_scale": .double(backend.double("guidance")),
                "sampler_name": .string(backend.string("sampler")), "seed": backend.settings["seed"] ?? .int(-1),
                "batch_size": 1, "n_iter": 1,
            ]
            let model = backend.typed.model
            if !model.isEmpty {
                body["override_settings"] = .object(["sd_model_checkpoint": .string(model)])
            }
            return .object(body)
        }
        let model = backend.typed.model
        var body: [String: JSONValue] = [
            "model": .string(model), "prompt": .string(prompt), "n": 1, "size": .string(backend.string("size")),
        ]
        // gpt-image models always answer in base64 and refuse the parameter; DALL-E needs it.
        if !model.hasPrefix("gpt-image") { body["response_format"] = "b64_json" }
        if !backend.string("quality").isEmpty { body["quality"] = .string(backend.string("quality")) }
        return .object(body)
    }

    public func generate(prompt: String, http: CurlHTTP) throws -> GeneratedImage {
        let key = ContentHash(ofJSON: .object(["wire": .string(backend.kind), "settings": settings, "prompt": .string(prompt)]))
        while true {
            if let image = cached(prompt: prompt, key: key) { return image }
            // One generation per distinct prompt: another worker drawing it now is waited for.
            if cache.inFlight.lead(key) { break }
            meter.add("shared_in_flight")
        }
        defer { cache.inFlight.finish(key) }
        if let image = cached(prompt: prompt, key: key) { return image }
        return try draw(prompt: prompt, key: key, http: http)
    }

    /// The image this request drew before, from the cache and the blob store.
    private func cached(prompt: String, key: ContentHash) -> GeneratedImage? {
        var generation = settings(for: prompt)
        let store = BlobStore(folder: blobFolder)
        if let stored = cache.lookup(key), let hex = stored["blob"]?.stringValue,
            let format = stored["format"]?.stringValue.flatMap(ImageFormat.init(rawValue:)),
            let hash = ContentHash(hex: hex), FileSystem.exists(store.path(for: hash, format: format))
        {
            meter.add("cache_hits")
            if let seed = stored["seed"] { generation["seed"] = seed }
            return GeneratedImage(blob: hash, format: format, width: Int(stored["width"]?.intValue ?? 0),
                                  height: Int(stored["height"]?.intValue ?? 0), generation: .object(generation), cached: true)
        }
        return nil
    }

    /// What a generation records: the backend's settings and the prompt.
    private func settings(for prompt: String) -> [String: JSONValue] {
        var generation = settings.objectValue ?? [:]
        generation["prompt"] = .string(prompt)
        return generation
    }

    private func draw(prompt: String, key: ContentHash, http: CurlHTTP) throws -> GeneratedImage {
        var generation = settings(for: prompt)
        let store = BlobStore(folder: blobFolder)
        let price = backend.typed.priceImage
        guard meter.reserve(tokens: 0, cost: price) else { throw EndpointError.stopped }
        let response: HTTPResponse
        do {
            response = try endpoint.post(path, body: Array(JSONWriter.canonical(body(prompt: prompt)).utf8), estimatedTokens: 0, using: http)
        } catch {
            meter.settle(reservedTokens: 0, reservedCost: price, promptTokens: nil, completionTokens: nil, cost: 0)
            throw error
        }
        meter.settle(reservedTokens: 0, reservedCost: price, promptTokens: 0, completionTokens: 0, cost: price, images: 1)
        let url = CurlHTTP.redacted(endpoint.url(path))
        let value = try? JSONParser.parse(bytes: response.body)
        let encoded: String?
        var seed: JSONValue?
        if backend.kind == "sd-webui" {
            encoded = value?["images"]?.arrayValue?.first?.stringValue
            // WebUI reports the seed it used (a -1 request gets a random one) in `info`, itself JSON.
            if let info = value?["info"]?.stringValue, let parsed = try? JSONParser.parse(bytes: Array(info.utf8)) {
                seed = parsed["seed"]
            }
        } else {
            encoded = value?["data"]?.arrayValue?.first?["b64_json"]?.stringValue
            if let revised = value?["data"]?.arrayValue?.first?["revised_prompt"]?.stringValue {
                generation["revised_prompt"] = .string(revised)
            }
        }
        guard let encoded else {
            throw EndpointError.rejected(status: response.status, url: url, message: "the reply carries no base64 image")
        }
        // WebUI may prefix a data URL header.
        let base64 = encoded.hasPrefix("data:") ? String(encoded[encoded.index(after: encoded.firstIndex(of: ",") ?? encoded.startIndex)...]) : encoded
        guard let data = Data(base64Encoded: base64, options: .ignoreUnknownCharacters) else {
            throw EndpointError.rejected(status: response.status, url: url, message: "the image is not valid base64")
        }
        let bytes = [UInt8](data)
        let image: DecodedImage
        do {
            image = try ImageCodec.decode(bytes)
        } catch {
            throw EndpointError.rejected(status: response.status, url: url, message: "the returned image cannot be used: \(error)")
        }
        guard let format = ImageFormat.sniff(bytes) else {
            throw EndpointError.rejected(status: response.status, url: url, message: "the returned image is neither PNG nor JPEG")
        }
        let hash = try store.store(bytes, format: format)
        if let seed { generation["seed"] = seed }
        var entry: [String: JSONValue] = [
            "blob": .string(hash.hex), "format": .string(format.rawValue),
            "width": .int(Int64(image.width)), "height": .int(Int64(image.height)),
        ]
        if let seed { entry["seed"] = seed }
        try cache.store(key, .object(entry))
        meter.add("cache_misses")
        return GeneratedImage(blob: hash, format: format, width: image.width, height: image.height,
                              generation: .object(generation), cached: false)
    }
}
