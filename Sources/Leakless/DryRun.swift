import Foundation
import LeaklessCore
import LeaklessModels

/// What one stage that calls models would send, from `leakless run --dry-run`. Nothing is sent.
public struct DryRunStage: Sendable {
    public let stage: String
    public let records: Int
    /// True when the stage's input does not exist yet, so its records are the builtin stand-ins'
    /// output for the stages before it (the counts are an estimate of the same shape).
    public let estimated: Bool
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
            "stage '\(stage)': \(records) record(s)\(estimated ? " (estimated)" : ""), \(calls) first-round model call(s), \(cached) already in the cache",
        ]
        if imageCalls > 0 { lines.append("  \(imageCalls) image generation(s) at least (up to max_rounds each)") }
        lines.append("  about \(promptTokens) prompt tokens and at most \(completionTokens) completion tokens to send")
        lines.append(pricesSet ? "  estimated cost: at most \(String(format1: cost, digits: 4)) USD" : "  no prices for its backends (price_prompt, price_completion, price_image): cost not estimated")
        lines.append("  every rendered prompt: \(promptsFile)")
        return lines.joined(separator: "\n")
    }
}

/// `leakless run --dry-run`: every stage still to run that calls models, in order, with every
/// first-round prompt rendered (written to `out/dry-run/<stage>.jsonl`), the number of calls, how
/// many the cache already answers, and estimated tokens and cost. A stage whose input does not
/// exist yet is planned over what the builtin stand-ins of the stages before it produce
/// (written under `out/dry-run/estimate/`): the same records in number and shape, so the counts
/// are an estimate; re-asks and later generation rounds depend on the replies and are not counted.
public struct DryRunReport: Sendable {
    public let stages: [DryRunStage]
    /// Stages still to run that call no model.
    public let offline: [String]
    /// Stages whose output exists.
    public let cached: [String]
    public let budget: Budget

    public var totalCost: Double { stages.reduce(0) { $0 + $1.cost } }
    public var totalCalls: Int { stages.reduce(0) { $0 + $1.calls + $1.imageCalls } }
    public var totalTokens: Int { stages.reduce(0) { $0 + $1.promptTokens + $1.completionTokens } }

    public var summary: String {
        var lines: [String] = []
        if !cached.isEmpty { lines.append("already done: \(cached.joined(separator: ", "))") }
        if !offline.isEmpty { lines.append("to run, calling no model: \(offline.joined(separator: ", "))") }
        if stages.isEmpty {
            lines.append("no stage still to run calls a model: nothing would be paid for")
            return lines.joined(separator: "\n")
        }
        lines.append("")
        lines += stages.map(\.summary)
        lines.append("")
        let priced = stages.contains(where: \.pricesSet)
        let unpriced = stages.filter { !$0.pricesSet && ($0.calls + $0.imageCalls) > $0.cached }.map(\.stage)
        lines.append("whole pipeline: \(totalCalls) first-round call(s), at most \(totalTokens) tokens"
            + (priced ? ", at most \(String(format1: totalCost, digits: 4)) USD" : "")
            + (unpriced.isEmpty || !priced ? "" : " (not counting \(unpriced.joined(separator: ", ")), which have no prices)"))
        if budget.usd > 0 && priced && totalCost > budget.usd {
            lines.append("warning: the estimate is above the budget's \(String(format1: budget.usd, digits: 4)) USD: the run would stop when the budget is spent")
        }
        if budget.requests > 0 && totalCalls > budget.requests {
            lines.append("warning: \(totalCalls) calls are more than the budget's \(budget.requests) requests")
        }
        if budget.tokens > 0 && totalTokens > budget.tokens {
            lines.append("warning: up to \(totalTokens) tokens is more than the budget's \(budget.tokens)")
        }
        lines.append("re-asks and later generation rounds depend on the replies and are not counted")
        return lines.joined(separator: "\n")
    }

    /// The first prompt of the first stage that sends any.
    public var firstPrompt: String? { stages.lazy.compactMap(\.firstPrompt).first }
}

extension PipelineDriver {
    /// Plans every stage still to run; nothing is sent.
    public func dryRun() throws -> DryRunReport {
        let plan = try plan()
        let folder = FileSystem.join(pipeline.workdirPath, "dry-run")
        let estimates = FileSystem.join(folder, "estimate")
        var stages: [DryRunStage] = [], offline: [String] = [], cached: [String] = []
        // The records the next stage reads when its input does not exist yet.
        var standIn: String?
        for (index, stage) in plan.enumerated() {
            if stage.isCached && standIn == nil {
                cached.append(stage.name)
                continue
            }
            // The stages after the last one that calls a model are only listed.
            guard plan[index...].contains(where: \.config.usesModels) else {
                offline.append(stage.name)
                continue
            }
            let input: String
            if let standIn {
                input = standIn
            } else {
                guard FileSystem.exists(stage.input) else {
                    throw DriverError("stage '\(stage.name)' needs \(stage.input), which does not exist yet")
                }
                input = stage.input
            }
            if stage.config.usesModels {
                stages.append(try dryRun(stage, input: input, estimated: standIn != nil, into: folder))
            } else {
                offline.append(stage.name)
            }
            // The next stage's records: this stage's builtin stand-in over the same input.
            guard !stage.config.definition.writesFolder, plan[(index + 1)...].contains(where: \.config.usesModels) else { continue }
            standIn = try standInOutput(stage, input: input, into: estimates)
        }
        return DryRunReport(stages: stages, offline: offline, cached: cached, budget: pipeline.budget)
    }

    /// Runs the stage with builtin backends over `input`, in this process, into the estimates
    /// folder; returns its output.
    private func standInOutput(_ stage: PlannedStage, input: String, into folder: String) throws -> String {
        guard let unit = StageRegistry.stage(named: stage.name) else { throw DriverError("unknown stage '\(stage.name)'") }
        var request = self.request(stage, budget: Budget(), upstream: [])
        request.input = absolute(input)
        request.output = absolute(FileSystem.join(folder, "\(stage.name).jsonl"))
        request.rejects = absolute(FileSystem.join(folder, "\(stage.name).rejects.jsonl"))
        request.stats = nil
        request.spentFile = nil
        request.backends = [:]
        do {
            try unit.run(request)
        } catch {
            throw DriverError("planning stage '\(stage.name)' with its builtin stand-in failed: \(error)")
        }
        return request.output
    }

    private func dryRun(_ stage: PlannedStage, input: String, estimated: Bool, into folder: String) throws -> DryRunStage {
        var request = self.request(stage, budget: Budget(), upstream: [])
        request.input = absolute(input)
        guard let unit = StageRegistry.stage(named: stage.name), let (model, source) = try unit.planned(request) else {
            throw DriverError("stage '\(stage.name)' calls no model")
        }
        let promptsFile = FileSystem.join(folder, "\(stage.name).jsonl")
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
                        let price = stage.config.backend?.typed.priceImage ?? 0
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
                    pricesSet = pricesSet || chat.backend.typed.pricePrompt > 0 || chat.backend.typed.priceCompletion > 0
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
        return DryRunStage(stage: stage.name, records: records, estimated: estimated, calls: calls, cached: cached, imageCalls: images,
                           promptTokens: promptTokens, completionTokens: completionTokens, cost: cost, pricesSet: pricesSet,
                           promptsFile: promptsFile, firstPrompt: firstPrompt)
    }
}
