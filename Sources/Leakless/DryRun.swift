import Foundation
import LeaklessCore
import LeaklessModels

/// `leakless run --dry-run`: the next stage that would run and calls models, with every
/// first-round prompt rendered (written to `out/dry-run/<stage>.jsonl`), the number of calls,
/// how many the cache already answers, and estimated tokens and cost. Nothing is sent.
public struct DryRunReport: Sendable {
    public let stage: String
    public let records: Int
    public let calls: Int
    public let cached: Int
    public let imageCalls: Int
    public let promptTokens: Int
    /// The completion allowance (max_tokens) of each uncached call: an upper bound.
    public let completionTokens: Int
    public let cost: Double
    public let pricesSet: Bool
    public let promptsFile: String
    public let firstPrompt: String?

    public var summary: String {
        var lines = [
            "dry run of stage '\(stage)': \(records) record(s), \(calls) first-round model call(s), \(cached) already in the cache",
        ]
        if imageCalls > 0 { lines.append("  \(imageCalls) image generation(s) at least (up to max_rounds each)") }
        lines.append("  about \(promptTokens) prompt tokens and at most \(completionTokens) completion tokens to send")
        lines.append(pricesSet ? "  estimated cost: at most \(String(format1: cost, digits: 4)) USD" : "  no prices in pipeline.yaml (price_prompt, price_completion, price_image): cost not estimated")
        lines.append("  re-asks and later generation rounds depend on the replies and are not counted")
        lines.append("  every rendered prompt: \(promptsFile)")
        return lines.joined(separator: "\n")
    }
}

extension PipelineDriver {
    /// Plans the first stale stage whose input exists and which calls a model; nil when none.
    public func dryRun() throws -> DryRunReport? {
        for stage in try plan() where !stage.isCached {
            guard stage.config.usesModels else {
                throw DriverError("the next stage to run, '\(stage.name)', calls no model: run it first ('leakless run --only \(stage.name)'), then plan again")
            }
            guard FileSystem.exists(stage.input) else {
                throw DriverError("stage '\(stage.name)' needs \(stage.input), which does not exist yet")
            }
            return try dryRun(stage)
        }
        return nil
    }

    private func dryRun(_ stage: PlannedStage) throws -> DryRunReport {
        let request = self.request(stage, budget: Budget(), upstream: [])
        guard let unit = StageRegistry.stage(named: stage.name), let (model, source) = try unit.planned(request) else {
            throw DriverError("stage '\(stage.name)' calls no model")
        }
        let promptsFile = FileSystem.join(pipeline.workdirPath, "dry-run", "\(stage.name).jsonl")
        let writer = try JSONLWriter(path: promptsFile)
        var records = 0, calls = 0, cached = 0, images = 0, promptTokens = 0, completionTokens = 0
        var cost = 0.0
        var pricesSet = false
        var firstPrompt: String?
        do {
            while let (line, record) = try source.nextRecord() {
                records += 1
                let planned: [PlannedCall]
                do {
                    planned = try model.plannedCalls(record)
                } catch let error as RecordError {
                    throw LocatedError(path: source.path, line: line, message: error.description)
                }
                for call in planned {
                    guard let chat = call.chat else {
                        images += 1
                        let price = stage.config.backend?.double("price_image") ?? 0
                        pricesSet = pricesSet || price > 0
                        cost += price
                        continue
                    }
                    calls += 1
                    let key = chat.key(messages: call.messages, format: chat.responseFormat(for: call.template), template: call.template?.hash)
                    let hit = chat.cache.lookup(key) != nil
                    if hit { cached += 1 }
                    let estimate = chat.estimate(call.messages)
                    if !hit {
                        promptTokens += estimate.prompt
                        completionTokens += estimate.completion
                        cost += chat.cost(prompt: estimate.prompt, completion: estimate.completion)
                    }
                    pricesSet = pricesSet || chat.backend.double("price_prompt") > 0 || chat.backend.double("price_completion") > 0
                    let rendered = call.messages.map { "[\($0.role)]\n\($0.text)" + ($0.images.isEmpty ? "" : "\n(+\($0.images.count) image)") }.joined(separator: "\n\n")
                    if firstPrompt == nil { firstPrompt = rendered }
                    try writer.write(json: .object([
                        "record": .string(record.id), "template": .string(call.template?.name ?? ""), "model": .string(chat.model),
                        "cached": .bool(hit), "estimated_prompt_tokens": .int(Int64(estimate.prompt)),
                        "messages": .array(call.messages.map(\.keyed)),
                    ]))
                }
            }
            try writer.commit()
        } catch {
            writer.discard()
            throw error
        }
        return DryRunReport(stage: stage.name, records: records, calls: calls, cached: cached, imageCalls: images,
                            promptTokens: promptTokens, completionTokens: completionTokens, cost: cost, pricesSet: pricesSet,
                            promptsFile: promptsFile, firstPrompt: firstPrompt)
    }
}
