import Foundation
import LeaklessCore

/// A stage of pipeline.yaml with its key and files, and whether its output already exists.
public struct PlannedStage: Sendable {
    public let config: StageConfig
    public let key: StageKey
    public let files: StageFiles
    /// The file it reads: the previous stage's output, or its data file.
    public let input: String
    public let templates: String

    public var name: String { config.name }
    /// The stats file of the stage that wrote `input`, or nil when the input is a data file.
    public let inputMarker: String?

    /// For `status`: cached; incomplete (stopped: output without its completion marker); stale
    /// (it ran, under other inputs or settings); or not run.
    public var state: String {
        if isCached { return "cached" }
        if FileSystem.exists(files.output) { return "incomplete (stopped; run again to resume)" }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: files.folder)) ?? []
        if names.contains(where: { $0.hasPrefix(name + "-") && $0.hasSuffix(".stats.json") }) { return "stale (inputs or settings changed)" }
        return "not run"
    }

    /// Complete when the stats file, written last, is there (and the folder, for export).
    public var isCached: Bool {
        FileSystem.exists(files.stats) && FileSystem.exists(files.output)
            && (!config.definition.writesFolder || FileSystem.isDirectory(files.outputFolder))
    }
}

public struct DriverError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Runs the stages of a pipeline in order, each as its own process, skipping those whose output
/// under their key exists.
public struct PipelineDriver {
    public let pipeline: PipelineConfig
    /// The folder holding the `leakless-<stage>` executables.
    public let executables: String

    public init(pipeline: PipelineConfig, executables: String) {
        self.pipeline = pipeline
        self.executables = executables
    }

    public var store: String { FileSystem.join(pipeline.workdirPath, "store") }
    public var blobs: String { FileSystem.join(pipeline.workdirPath, "blobs") }
    /// Model replies by request hash.
    public var cache: String { FileSystem.join(pipeline.workdirPath, "cache") }
    public var manifestPath: String { FileSystem.join(pipeline.workdirPath, "manifest.json") }
    /// What model calls have cost in this workdir, over every run: the budget is the workdir's.
    public var ledgerPath: String { FileSystem.join(pipeline.workdirPath, "spent.json") }

    /// The workdir's spending so far (nothing when it never paid).
    public func spentSoFar() throws -> Budget {
        guard FileSystem.exists(ledgerPath) else { return Budget() }
        do {
            return try JSONParser.parse(bytes: try FileSystem.read(ledgerPath)).decode(Budget.self)
        } catch {
            throw LocatedError(path: ledgerPath, line: nil, message: "not a spending ledger: \(error)")
        }
    }

    /// A link to the newest export.
    public var benchmarkLink: String { FileSystem.join(pipeline.workdirPath, "benchmark") }

    /// Every stage's key, computed from the configuration and templates alone (no stage runs), so
    /// a stage's key is known before its input exists.
    /// Where the content hashes of the files the stage keys read are kept between runs.
    var fileHashes: String { FileSystem.join(cache, "file-hashes.json") }

    public func plan() throws -> [PlannedStage] {
        FileHashCache.shared.load(from: fileHashes)
        // Kept only in a workdir that exists: planning alone creates nothing.
        defer { if FileSystem.isDirectory(pipeline.workdirPath) { try? FileHashCache.shared.save(to: fileHashes) } }
        var planned: [PlannedStage] = []
        for stage in pipeline.stages {
            let templates = pipeline.locate(FileSystem.join("stages", stage.name))
            let previous = planned.last
            // The settings are checked before the key reads the files they name.
            try check(stage)
            let key = try StageKey(
                stage: stage, pipeline: pipeline, templates: templates,
                inputName: previous.map { FileSystem.lastComponent(of: $0.files.output) })
            let input: String
            if let previous {
                input = previous.files.output
            } else if case .parameter(let name) = stage.definition.input, let path = stage.parameters[name]?.stringValue {
                input = pipeline.locate(path)
            } else {
                throw DriverError("stage '\(stage.name)' has no input")
            }
            planned.append(PlannedStage(
                config: stage, key: key, files: StageFiles(stage: stage.name, key: key.hash, storeFolder: store),
                input: input, templates: templates, inputMarker: previous?.files.stats))
        }
        return planned
    }

    /// The stage's parameters read as its typed `Parameters` and checked across, before any
    /// stage runs: an error names pipeline.yaml's line of the stage.
    private func check(_ stage: StageConfig) throws {
        guard let unit = StageRegistry.stage(named: stage.name) else {
            throw LocatedError(path: pipeline.path, line: stage.line, message: "unknown stage '\(stage.name)'")
        }
        do {
            _ = try unit.checkedParameters(resolvedParameters(stage), origin: pipeline.path)
        } catch let error as LocatedError {
            throw LocatedError(path: pipeline.path, line: stage.line, message: error.message)
        }
    }

    /// A stage's parameters with its paths resolved from the pipeline file's folder and made absolute.
    func resolvedParameters(_ stage: StageConfig) -> [String: JSONValue] {
        resolved(stage.parameters, of: stage.definition)
    }

    func resolved(_ given: [String: JSONValue], of definition: StageDefinition) -> [String: JSONValue] {
        var parameters = given
        for parameter in definition.parameters {
            if parameter.type.isPath, let path = parameters[parameter.name]?.stringValue, !path.isEmpty {
                parameters[parameter.name] = .string(absolute(pipeline.locate(path)))
            } else if case .collectionList = parameter.type, let paths = parameters[parameter.name]?.stringArray {
                parameters[parameter.name] = .array(paths.map { .string(absolute(pipeline.locate($0))) })
            }
        }
        return parameters
    }

    /// The API keys the network backends of these stages read: every variable must be set
    /// before the first stage runs, not found missing after paid stages.
    public func missingKeys(_ stages: [PlannedStage]) -> [String] {
        var missing: [String] = []
        for stage in stages {
            for backend in stage.config.backends.values.sorted(by: { $0.name < $1.name }) {
                let variable = backend.typed.apiKeyEnv
                guard !variable.isEmpty, (ProcessInfo.processInfo.environment[variable] ?? "").isEmpty else { continue }
                let line = "\(pipeline.path):\(stage.config.line): stage '\(stage.name)' uses backend '\(backend.name)', whose API key variable \(variable) is not set"
                if !missing.contains(line) { missing.append(line) }
            }
        }
        return missing
    }

    public struct StageReport: Sendable {
        public let stage: PlannedStage
        public let ran: Bool
        public let stats: StageStats?
        public let wallSeconds: Double

        public init(stage: PlannedStage, ran: Bool, stats: StageStats?, wallSeconds: Double) {
            self.stage = stage
            self.ran = ran
            self.stats = stats
            self.wallSeconds = wallSeconds
        }
    }

    /// - Parameters:
    ///   - only: run just this stage (its input must exist).
    ///   - from: rerun this stage and every one after it.
    ///   - force: rerun even when the output exists.
    ///   - detach: with the Slurm executor, submit every stage as chained jobs and return at once.
    public func run(only: String? = nil, from: String? = nil, force: Bool = false, detach: Bool = false) throws -> [StageReport] {
        let plan = try plan()
        for name in [only, from].compactMap({ $0 }) where !plan.contains(where: { $0.name == name }) {
            throw DriverError("no stage '\(name)' in \(pipeline.path) (it has: \(plan.map(\.name).joined(separator: ", ")))")
        }
        var rerunRest = false
        var toRun: [PlannedStage] = []
        for stage in plan {
            if let only, stage.name != only { continue }
            if stage.name == from { rerunRest = true }
            if force || rerunRest || !stage.isCached { toRun.append(stage) }
        }
        let missing = missingKeys(toRun)
        guard missing.isEmpty else { throw DriverError(missing.joined(separator: "\n")) }

        let lock = try WorkdirLock(workdir: pipeline.workdirPath)
        defer { withExtendedLifetime(lock) {} }
        // Jobs of an earlier Slurm run may still write here: never beside them.
        let own = ProcessInfo.processInfo.environment["SLURM_ARRAY_JOB_ID"] ?? ProcessInfo.processInfo.environment["SLURM_JOB_ID"]
        let active = SlurmExecutor.activeJobs(workdir: pipeline.workdirPath).filter { $0 != own }
        guard active.isEmpty else {
            throw DriverError("Slurm jobs of an earlier run of \(pipeline.workdirPath) are still queued or running (\(active.prefix(6).joined(separator: ", "))): wait for them ('leakless status'), or cancel them with scancel")
        }
        try TemporaryName.removeStale(under: pipeline.workdirPath)
        Interruption.forwardToChildren()
        let slurm = SlurmExecutor(driver: self)
        let onSlurm = toRun.filter { pipeline.executor(for: $0.config).kind == .slurm }
        // Spending of shards an earlier (detached) run left unmerged counts before anything runs.
        for stage in onSlurm { slurm.bookShardSpending(stage) }
        if force || from != nil {
            // A stage run again starts over, its shards too.
            for stage in onSlurm where slurm.isSharded(stage) { try? FileManager.default.removeItem(atPath: slurm.shardFiles(stage).folder) }
        }
        if detach {
            guard onSlurm.count == toRun.count else {
                let local = toRun.filter { pipeline.executor(for: $0.config).kind != .slurm }.map(\.name)
                throw DriverError("--detach needs every stage to run on Slurm, but \(local.joined(separator: ", ")) run locally: set 'executor: slurm' in \(pipeline.path) or give --executor slurm")
            }
            if let first = toRun.first { try checkInputComplete(first) }
            _ = try remainingBudget(after: try spentSoFar(), before: toRun.first ?? plan[0])
            // What was submitted is in <workdir>/slurm/run.json (SlurmRunRecord).
            _ = try slurm.submitDetached(toRun, plan: plan)
            return plan.map { StageReport(stage: $0, ran: false, stats: try? StageStats.load(path: $0.files.stats), wallSeconds: 0) }
        }
        var slurmRecord = SlurmRunRecord(pipeline: absolute(pipeline.path), detached: false, submitted: SlurmExecutor.now(), stages: [])

        var reports: [StageReport] = []
        var spent = try spentSoFar()
        for stage in plan {
            guard toRun.contains(where: { $0.name == stage.name }) else {
                reports.append(StageReport(stage: stage, ran: false, stats: try? StageStats.load(path: stage.files.stats), wallSeconds: 0))
                continue
            }
            try checkInputComplete(stage)
            let remaining = try remainingBudget(after: spent, before: stage)
            let started = Progress.now()
            let upstream = plan.prefix { $0.name != stage.name }.map(\.files.stats)
            if pipeline.executor(for: stage.config).kind == .slurm {
                // The shards and the merge book their spending in the ledger themselves.
                defer { spent = (try? spentSoFar()) ?? spent }
                try slurm.run(stage, upstream: upstream, record: &slurmRecord)
            } else {
                defer { try? record(spending: stage, into: &spent) }
                try execute(stage, budget: remaining, after: upstream)
            }
            let stats = try StageStats.load(path: stage.files.stats)
            reports.append(StageReport(stage: stage, ran: true, stats: stats, wallSeconds: Progress.now() - started))
        }
        try writeManifest(reports)
        try? FileHashCache.shared.save(to: fileHashes)
        if let export = plan.last, export.config.definition.writesFolder, FileSystem.isDirectory(export.files.outputFolder) {
            try linkBenchmark(to: export.files.outputFolder)
        }
        return reports
    }

    /// A stage never reads an input whose writer did not finish: the writer's stats file, its
    /// completion marker, must be there, not only its output.
    private func checkInputComplete(_ stage: PlannedStage) throws {
        guard FileSystem.exists(stage.input) else {
            throw DriverError("stage '\(stage.name)' needs \(stage.input), which does not exist: run the stages before it first")
        }
        if let marker = stage.inputMarker, !FileSystem.exists(marker) {
            throw DriverError("stage '\(stage.name)' needs the output of the stage before it, which did not finish (no \(FileSystem.lastComponent(of: marker))): run 'leakless run' to finish it first")
        }
    }

    /// Adds what a stage process spent (finished, stopped or killed after writing it) to the ledger.
    private func record(spending stage: PlannedStage, into spent: inout Budget) throws {
        let file = stage.files.spent
        guard FileSystem.exists(file) else { return }
        let used = Budget(json: try JSONParser.parse(bytes: try FileSystem.read(file)))
        spent = Budget(usd: spent.usd + used.usd, requests: spent.requests + used.requests, tokens: spent.tokens + used.tokens)
        try AtomicFile.write(JSONWriter.pretty(spent.json), to: ledgerPath)
        try FileSystem.remove(file)
    }

    /// What the run may still spend when `stage` starts; an error when a limit is used up and
    /// the stage would call a model.
    func remainingBudget(after spent: Budget, before stage: PlannedStage) throws -> Budget {
        let budget = pipeline.budget
        guard budget.isLimited else { return budget }
        let remaining = Budget(
            usd: budget.usd > 0 ? budget.usd - spent.usd : 0,
            requests: budget.requests > 0 ? budget.requests - spent.requests : 0,
            tokens: budget.tokens > 0 ? budget.tokens - spent.tokens : 0)
        if stage.config.usesModels && ((budget.usd > 0 && remaining.usd <= 0) || (budget.requests > 0 && remaining.requests <= 0)
            || (budget.tokens > 0 && remaining.tokens <= 0)) {
            throw DriverError("the budget in \(pipeline.path) is spent in \(pipeline.workdirPath) (\(String(format1: spent.usd, digits: 4)) USD, \(spent.requests) requests, \(spent.tokens) tokens so far, see \(ledgerPath)); stage '\(stage.name)' was not run: raise the budget to go on")
        }
        return remaining
    }

    /// The request the stage executable is given.
    func request(_ stage: PlannedStage, budget: Budget, upstream: [String]) -> StageRunRequest {
        let writesFolder = stage.config.definition.writesFolder
        return StageRunRequest(
            stage: stage.name, input: absolute(stage.input), output: absolute(stage.files.output),
            rejects: absolute(stage.files.rejects), stats: absolute(stage.files.stats),
            folder: writesFolder ? absolute(stage.files.outputFolder) : nil, templates: absolute(stage.templates),
            blobs: absolute(blobs), cache: absolute(cache), parameters: resolvedParameters(stage.config),
            backends: stage.config.backends, budget: budget,
            // The export's card and provenance read what the stages before it wrote.
            upstream: writesFolder ? upstream.map(absolute) : [], spentFile: stage.config.usesModels ? absolute(stage.files.spent) : nil,
            given: given(stage))
    }

    /// What the stage's definition says it needs besides its input.
    func given(_ stage: PlannedStage) -> [String: JSONValue] {
        var given: [String: JSONValue] = [:]
        for need in stage.config.definition.needs {
            switch need {
            case .workdirLog(let name, let path, let applies):
                guard applies(stage.config.parameters) else { continue }
                given[name] = [
                    "path": .string(absolute(FileSystem.join(pipeline.workdirPath, path))),
                    "bytes": .int(stage.key.description[name]?["bytes"]?.intValue ?? 0),
                ]
            case .stageParameters(let name, let other):
                if let parameters = parameters(ofStage: other) { given[name] = .object(parameters) }
            }
        }
        return given
    }

    /// A stage's parameters (its defaults when the pipeline has no such stage), paths resolved.
    public func parameters(ofStage name: String) -> [String: JSONValue]? {
        if let stage = pipeline.stage(named: name) { return resolvedParameters(stage) }
        guard let definition = StageRegistry.definition(named: name) else { return nil }
        return resolved(definition.defaults, of: definition)
    }

    private func execute(_ stage: PlannedStage, budget: Budget, after upstream: [String]) throws {
        if let signal = Interruption.receivedSignal {
            throw DriverError("interrupted (signal \(signal)) before stage '\(stage.name)'; finished stages are kept, so 'leakless run' again resumes")
        }
        try request(stage, budget: budget, upstream: upstream).write(to: stage.files.request)
        // A stats file from an earlier, interrupted run must not mark this one complete.
        try FileSystem.remove(stage.files.stats)
        let executable = FileSystem.join(executables, stage.config.definition.executableName)
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw DriverError("cannot find the stage executable \(executable): build the package first (swift build)")
        }
        let exit = try ChildProcess.run(
            executable, arguments: ["--request", absolute(stage.files.request)],
            environment: ["LEAKLESS_DRIVER_PID": String(ProcessInfo.processInfo.processIdentifier)])
        if let signal = Interruption.receivedSignal {
            throw DriverError("interrupted (signal \(signal)) during stage '\(stage.name)': it wrote what had finished and its model replies are cached; 'leakless run' again resumes")
        }
        switch exit {
        case .status(0): return
        case .status(StageStopped.exitCode):
            throw DriverError("stage '\(stage.name)' stopped early; what finished is cached, so 'leakless run' again resumes")
        case .status(let status):
            throw DriverError("stage '\(stage.name)' failed (exit \(status)); its output was not written")
        case .signal(let signal):
            throw DriverError("stage '\(stage.name)' was killed (signal \(signal)); its output was not written, and 'leakless run' again resumes")
        }
    }

    func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileSystem.join(FileManager.default.currentDirectoryPath, path)
    }

    private func writeManifest(_ reports: [StageReport]) throws {
        let stages: [JSONValue] = reports.map { report in
            var entry: [String: JSONValue] = [
                "stage": .string(report.stage.name),
                "key": .string(report.stage.key.hash.hex),
                "key_inputs": report.stage.key.description,
                "output": .string(report.stage.files.output),
                "ran": .bool(report.ran),
                "wall_seconds": .double(report.wallSeconds.rounded(places: 3)),
            ]
            if let stats = report.stats {
                entry["in"] = .int(Int64(stats.recordsIn))
                entry["out"] = .int(Int64(stats.recordsOut))
                entry["rejected"] = .int(Int64(stats.rejected))
                entry["rejects_by_reason"] = stats.json["rejects_by_reason"]
                entry["stage_seconds"] = .double(stats.seconds)
            }
            return .object(entry)
        }
        try AtomicFile.write(JSONWriter.pretty(.object(["pipeline": .string(pipeline.path), "stages": .array(stages)])), to: manifestPath)
    }

    private func linkBenchmark(to folder: String) throws {
        let relative = FileSystem.join("store", FileSystem.lastComponent(of: folder))
        let temporary = benchmarkLink + ".tmp-link"
        try? FileManager.default.removeItem(atPath: temporary)
        try FileManager.default.createSymbolicLink(atPath: temporary, withDestinationPath: relative)
        guard rename(temporary, benchmarkLink) == 0 else {
            throw DriverError("cannot update the link \(benchmarkLink)")
        }
    }
}
