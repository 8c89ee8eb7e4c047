/// A setting of a backend kind: its type, default, and whether it changes what the backend
/// replies (only those enter stage keys and request caches; concurrency, timeouts and prices do
/// not, so tuning them reuses finished work).
public struct BackendSetting: Sendable {
    public let name: String
    public let type: ParameterType
    /// nil: required.
    public let defaultValue: JSONValue?
    public let affectsOutput: Bool
    public let help: String

    public init(_ name: String, _ type: ParameterType, default defaultValue: JSONValue?, affectsOutput: Bool, _ help: String) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.affectsOutput = affectsOutput
        self.help = help
    }
}

/// The kinds of backend pipeline.yaml can declare, with their settings.
public struct BackendKind: Sendable {
    public let name: String
    /// What it serves: "builtin", "chat" (OpenAI-compatible chat completions), "image"
    /// (text-to-image), "typography" (text drawn into images, here), "guard", "moderation".
    public let serves: String
    /// Runs here, sends nothing and costs nothing: builtin and typography.
    public var isLocal: Bool { serves == "builtin" || serves == "typography" }
    public let settings: [BackendSetting]

    public func setting(_ name: String) -> BackendSetting? { settings.first { $0.name == name } }

    /// Settings every network backend has: where it is, how to authenticate, how hard to push it.
    static let transport: [BackendSetting] = [
        BackendSetting("base_url", .string, default: nil, affectsOutput: false, "the endpoint's base URL, e.g. https://api.openai.com/v1"),
        BackendSetting("api_key_env", .string, default: "", affectsOutput: false, "the environment variable holding the API key (empty: no key)"),
        BackendSetting("max_in_flight", .integer(1...1024), default: 8, affectsOutput: false, "requests in flight at once"),
        BackendSetting("rpm", .integer(0...10_000_000), default: 0, affectsOutput: false, "requests per minute allowed (0: no limit)"),
        BackendSetting("tpm", .integer(0...1_000_000_000), default: 0, affectsOutput: false, "tokens per minute allowed (0: no limit)"),
        BackendSetting("timeout", .number(0.01...86_400), default: 120, affectsOutput: false, "seconds one request may take"),
        BackendSetting("max_retries", .integer(0...100), default: 6, affectsOutput: false, "retries on 429, 5xx, timeouts and dropped connections"),
        BackendSetting("retry_base_seconds", .number(0...600), default: 1, affectsOutput: false, "first backoff delay; doubles per retry, with jitter"),
    ]

    public static let builtin = BackendKind(name: "builtin", serves: "builtin", settings: [])

    public static let openAIChat = BackendKind(name: "openai-chat", serves: "chat", settings: transport + [
        BackendSetting("model", .string, default: nil, affectsOutput: true, "the model name the endpoint serves"),
        BackendSetting("temperature", .number(0...2), default: 0, affectsOutput: true, "sampling temperature"),
        BackendSetting("max_tokens", .integer(1...1_000_000), default: 1024, affectsOutput: true, "most tokens per reply"),
        BackendSetting("seed", .integer(Int64.min...Int64.max), default: .null, affectsOutput: true, "sampling seed, where the endpoint honours it"),
        BackendSetting("json_mode", .choice(["auto", "json_schema", "json_object", "text"]), default: "auto", affectsOutput: true,
                       "response_format: auto tries json_schema, then json_object, then plain text"),
        BackendSetting("vision", .boolean, default: true, affectsOutput: false, "whether the model accepts images"),
        BackendSetting("max_reasks", .integer(0...10), default: 2, affectsOutput: true, "asks again after a reply that breaks the expected JSON"),
        BackendSetting("price_prompt", .number(0...1_000_000), default: 0, affectsOutput: false, "USD per million prompt tokens"),
        BackendSetting("price_completion", .number(0...1_000_000), default: 0, affectsOutput: false, "USD per million completion tokens"),
    ])

    public static let openAIImages = BackendKind(name: "openai-images", serves: "image", settings: transport + [
        BackendSetting("model", .string, default: nil, affectsOutput: true, "the image model, e.g. gpt-image-1 or dall-e-3"),
        BackendSetting("size", .string, default: "1024x1024", affectsOutput: true, "WIDTHxHEIGHT"),
        BackendSetting("quality", .string, default: "", affectsOutput: true, "passed as 'quality' when set"),
        BackendSetting("seed", .integer(Int64.min...Int64.max), default: .null, affectsOutput: true, "recorded; sent where the server takes one"),
        BackendSetting("price_image", .number(0...1_000_000), default: 0, affectsOutput: false, "USD per image"),
    ])

    public static let sdWebUI = BackendKind(name: "sd-webui", serves: "image", settings: transport + [
        BackendSetting("model", .string, default: "", affectsOutput: true, "checkpoint name, sent as override_settings.sd_model_checkpoint when set"),
        BackendSetting("width", .integer(64...4096), default: 1024, affectsOutput: true, "image width"),
        BackendSetting("height", .integer(64...4096), default: 1024, affectsOutput: true, "image height"),
        BackendSetting("steps", .integer(1...500), default: 28, affectsOutput: true, "sampling steps"),
        BackendSetting("guidance", .number(0...100), default: 4.5, affectsOutput: true, "classifier-free guidance (cfg_scale)"),
        BackendSetting("sampler", .string, default: "Euler", affectsOutput: true, "sampler_name"),
        BackendSetting("seed", .integer(-1...Int64.max), default: 1, affectsOutput: true, "seed; the record keeps it"),
        BackendSetting("negative_prompt", .string, default: "", affectsOutput: true, "negative prompt"),
        BackendSetting("price_image", .number(0...1_000_000), default: 0, affectsOutput: false, "USD per image"),
    ])

    /// Llama Guard (3-8B for text, 3-11B-Vision for text with an image) served behind an
    /// OpenAI-compatible chat endpoint (vLLM, for one): the conversation goes in as chat
    /// messages, the model's chat template frames it, and the reply is `safe` or
    /// `unsafe` with the MLCommons hazard codes on the next line.
    public static let llamaGuard = BackendKind(name: "llamaguard", serves: "guard", settings: openAIChat.settings.map { setting in
        switch setting.name {
        case "json_mode": return BackendSetting("json_mode", .choice(["text"]), default: "text", affectsOutput: true, "Llama Guard answers in its own format")
        case "max_tokens": return BackendSetting("max_tokens", .integer(1...1024), default: 20, affectsOutput: true, "most tokens per reply")
        case "vision": return BackendSetting("vision", .boolean, default: false, affectsOutput: false, "the vision model (3-11B-Vision) takes the image itself")
        case "max_reasks": return BackendSetting("max_reasks", .integer(0...0), default: 0, affectsOutput: true, "no re-asks: the reply is parsed as it is")
        default: return setting
        }
    })

    /// OpenAI's moderation endpoint (`POST {base}/moderations`): text, or text with an image.
    public static let openAIModeration = BackendKind(name: "openai-moderation", serves: "moderation", settings: transport + [
        BackendSetting("model", .string, default: "omni-moderation-latest", affectsOutput: true, "the moderation model"),
        BackendSetting("vision", .boolean, default: true, affectsOutput: false, "whether the model takes images (omni-moderation does)"),
    ])

    /// Text drawn into images with Pango and Cairo, in the layouts of typographic benchmarks.
    public static let typography = BackendKind(name: "typography", serves: "typography", settings: [
        BackendSetting("layout", .choice(["typo", "sd_typo", "figstep"]), default: "typo", affectsOutput: true,
                       "typo: the text alone; sd_typo: a picture with the text in a band below; figstep: a heading over an empty numbered list"),
        BackendSetting("text", .string, default: "{phrase}", affectsOutput: true, "what is drawn; {phrase} is the element's key phrase (FigStep: e.g. 'Steps to use {phrase}.')"),
        BackendSetting("font", .string, default: "DejaVu Sans Bold", affectsOutput: true, "a Pango font description of an installed font"),
        BackendSetting("size", .integer(8...400), default: 96, affectsOutput: true, "text size in pixels"),
        BackendSetting("width", .integer(64...4096), default: 768, affectsOutput: true, "image width in pixels (figstep: its side)"),
        BackendSetting("wrap", .choice(["word", "char", "word_char"]), default: "word_char", affectsOutput: true, "where lines break"),
        BackendSetting("margin", .integer(0...512), default: 32, affectsOutput: true, "white margin around the text, in pixels"),
        BackendSetting("list_items", .integer(1...20), default: 3, affectsOutput: true, "figstep: the numbered lines"),
    ])

    public static let all = [builtin, openAIChat, openAIImages, sdWebUI, llamaGuard, openAIModeration, typography]

    public static func named(_ name: String) -> BackendKind? { all.first { $0.name == name } }
}

/// A use a stage makes of a backend, named by the key it is given under in pipeline.yaml
/// (`backend`, `prompt_writer`, `verifier`, ...).
public struct BackendRole: Sendable {
    public let name: String
    /// What the backend must serve: "builtin", "chat", "image".
    public let serves: [String]
    public let required: Bool
    /// The role sends images, so a chat backend must have `vision: true`.
    public let needsVision: Bool
    public let help: String

    public init(_ name: String, serves: [String], required: Bool, needsVision: Bool = false, _ help: String) {
        self.name = name
        self.serves = serves
        self.required = required
        self.needsVision = needsVision
        self.help = help
    }
}
