import Foundation
import LeaklessCore
import LeaklessImaging
import LeaklessModels
import LeaklessNetwork

/// image, generation: the paper's loop. A chat model turns the description into a
/// text-to-image prompt; the image endpoint draws it; a vision model checks the picture clearly
/// shows the risky object or scene and, when it does not, writes a refined prompt; at most
/// `max_rounds` rounds, each kept in the record's history.
struct GenerateImage: ModelStep {
    /// The stage over the image backend and, where given, the prompt writer and the verifier.
    static func stage(_ context: StageContext, parameters: ImageStage.Parameters) throws -> ModelStage {
        try ModelStage(context, roles: ["backend", "prompt_writer", "verifier"]) { try GenerateImage($0, parameters: parameters) }
    }

    let calls: ModelCalls
    let images: ImageClient
    let writer: Prompt?
    let verifier: Prompt?
    let rounds: Int
    /// Draws the key phrase under each accepted image (SD_TYPO), when asked.
    let overlay: TypographicText?

    init(_ calls: ModelCalls, parameters: ImageStage.Parameters) throws {
        self.calls = calls
        let context = calls.context
        images = calls.session.images(try calls.network("backend"), blobs: context.blobs)
        writer = context.network("prompt_writer") == nil ? nil : try calls.prompt("t2i", role: "prompt_writer")
        verifier = context.network("verifier") == nil ? nil : try calls.prompt("verify", role: "verifier")
        rounds = parameters.maxRounds
        overlay = parameters.overlay ? try TypographicText(context.backend("typography")) : nil
    }

    func values(_ record: Record) throws -> [String: String] {
        try record.requireKind(["query", "seed"])
        return [
            "image_description": try record.requireString("image_description"), "safety_reason": record.fields["safety_reason"]?.stringValue ?? "",
            "category": record.fields["category"]?.stringValue ?? "", "sub_category": record.fields["sub_category"]?.stringValue ?? "",
        ]
    }

    func plannedCalls(_ record: Record) throws -> [PlannedCall] {
        if record["image"] != nil { return [] }
        let values = try values(record)
        var calls: [PlannedCall] = []
        if let writer { calls.append(try writer.planned(values)) }
        calls.append(PlannedCall(chat: nil, template: nil, messages: [], imagePrompt: writer == nil ? values["image_description"] : nil))
        if let verifier {
            var verifyValues = values
            verifyValues["prompt"] = "(the text-to-image prompt)"
            calls.append(try verifier.planned(verifyValues))
        }
        return calls
    }

    func process(_ record: Record, worker: Int) throws -> [StageOutput] {
        if let passed = ImageStage.passThrough(record) { return passed }
        let values = try values(record)
        let description = values["image_description"]!
        var prompt = description
        var promptProvenance: JSONValue = .null
        if let writer {
            switch try writer.ask(values, worker: worker, check: { nonEmptyStrings(.array([$0["prompt"] ?? .null]), field: "prompt", count: 1) }) {
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
                image = try images.generate(prompt: prompt, http: calls.session.http(worker))
            } catch let error as EndpointError where error.isContentRefusal {
                return [.reject(record, reason: "refusal", detail: "round \(round): the image endpoint declined: \(error)")]
            }
            var step: [String: JSONValue] = ["round": .int(Int64(round)), "prompt": .string(prompt), "blob": .string(image.blob.hex)]
            var accepted = true
            if let verifier {
                let attachment = ImageAttachment(
                    bytes: try FileSystem.read(BlobStore(folder: calls.context.blobs).path(for: image.blob, format: image.format)),
                    format: image.format)
                var verifyValues = values
                verifyValues["prompt"] = prompt
                switch try verifier.ask(verifyValues, images: [attachment], worker: worker) {
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
                var (blob, format, width, height) = (image.blob, image.format, image.width, image.height)
                var overlaid: JSONValue = .null
                if let overlay {
                    // The typographic variant: the generated picture with the key phrase below it.
                    let store = BlobStore(folder: calls.context.blobs)
                    let picture = try ImageCodec.decode(try FileSystem.read(store.path(for: image.blob, format: image.format)))
                    // At the picture's own width (its pixels kept as they are) unless it is narrower
                    // than the typography's width, to which it is then scaled.
                    let canvas = max(picture.width, overlay.typography.width)
                    let (drawn, provenance) = try overlay.draw(phrase: try record.keyPhrase(), layout: .sdTypo, picture: picture, width: canvas)
                    blob = try store.store(try ImageCodec.encodePNG(drawn), format: .png)
                    (format, width, height) = (.png, drawn.width, drawn.height)
                    overlaid = .object(["typography": provenance, "generated_blob": .string(image.blob.hex)])
                }
                return [.record(record.derived { fields in
                    fields["kind"] = "pair"
                    fields["image"] = .object([
                        "blob": .string(blob.hex), "format": .string(format.rawValue),
                        "width": .int(Int64(width)), "height": .int(Int64(height)),
                        "method": "generation", "source": .string("generated by \(images.backend.name)"),
                        "license": .string("model output: see the terms of \(images.backend.typed.model.isEmpty ? images.backend.kind : images.backend.typed.model)"),
                        "generation": image.generation, "prompt_writer": promptProvenance,
                        "rounds": .int(Int64(round)), "history": .array(history),
                    ])
                    if overlaid != .null, case .object(var image) = fields["image"] {
                        image["overlay"] = overlaid
                        fields["image"] = .object(image)
                    }
                })]
            }
        }
        return [.reject(record, reason: "image-not-verified",
                        detail: "after \(rounds) round(s) the verifier never saw the risk; prompts: \(history.compactMap { $0["prompt"]?.stringValue }.joined(separator: " | "))")]
    }
}
