import ArgumentParser
import Foundation
import Leakless
import LeaklessCore

extension ExecutorSettings.Kind: ExpressibleByArgument {}

/// Options every driver command takes.
public struct PipelineOptions: ParsableArguments {
    @Option(name: .long, help: "The pipeline file (its backends, workdir and stages).")
    public var pipeline: String = PipelineConfig.defaultPath

    public init() {}

    /// The pipeline file, loaded and checked.
    func config() throws -> PipelineConfig {
        try PipelineConfig.load(path: pipeline, definitions: StageRegistry.definitions)
    }

    /// `executor`: where the stages run, over what the pipeline file says.
    func driver(executor: ExecutorSettings.Kind? = nil) throws -> PipelineDriver {
        guard FileSystem.exists(pipeline) else {
            throw ValidationError("no pipeline file \(pipeline) here: give '--pipeline FILE', or write a starter one with 'leakless init DIR'")
        }
        var config = try PipelineConfig.load(path: pipeline, definitions: StageRegistry.definitions)
        config.shareFolders = [installedShareFolder()]
        if let executor { config.executor.kind = executor }
        return PipelineDriver(pipeline: config, executables: executableFolder())
    }
}

/// The stage executables are built (and installed) next to the driver.
func executableFolder() -> String {
    let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return FileSystem.parent(of: path)
}

/// Where `scripts/install` puts stages/ and data/: PREFIX/share/leakless beside PREFIX/bin.
func installedShareFolder() -> String {
    FileSystem.join(FileSystem.parent(of: executableFolder()), "share/leakless")
}

/// Runs the body; any error becomes one line on stderr and a non-zero exit.
public func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandleOutput.standardError("leakless: \(error)\n")
        throw ExitCode.failure
    }
}

public struct RunCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the pipeline's stages in order, skipping those whose output exists.")

    @OptionGroup var options: PipelineOptions

    @Option(help: "Run only this stage (the stages before it must have run).")
    var only: String?

    @Option(help: "Rerun this stage and every stage after it.")
    var from: String?

    @Flag(help: "Rerun stages even when their output exists.")
    var force = false

    @Flag(help: "Send nothing: plan every stage still to run, render the prompts of those that call models, and print their calls, tokens and cost, and the whole pipeline's.")
    var dryRun = false

    @Option(help: "Where the stages run: local or slurm (overrides the pipeline file's 'executor').")
    var executor: ExecutorSettings.Kind?

    @Flag(help: "With the Slurm executor: submit every stage as chained jobs and return at once ('leakless status' follows them).")
    var detach = false

    public init() {}

    public func validate() throws {
        if only != nil && from != nil { throw ValidationError("'--only' and '--from' cannot be used together") }
        if dryRun && (only != nil || from != nil || force || detach) { throw ValidationError("'--dry-run' plans every stage still to run; it takes no other option") }
        if detach && only != nil { throw ValidationError("'--detach' submits every stage still to run; it does not take '--only'") }
    }

    public func run() throws {
        try reportingErrors {
            let driver = try options.driver(executor: executor)
            if dryRun {
                for missing in driver.missingKeys(try driver.plan().filter { !$0.isCached }) {
                    FileHandleOutput.standardError("leakless: warning: \(missing)\n")
                }
                let report = try driver.dryRun()
                guard !report.stages.isEmpty || !report.offline.isEmpty else {
                    print("leakless: every stage's output exists; nothing to plan")
                    return
                }
                print("dry run of \(driver.pipeline.path): nothing is sent")
                print(report.summary)
                if let first = report.firstPrompt {
                    print("\nfirst prompt:\n\(first)")
                }
                return
            }
            let reports = try driver.run(only: only, from: from, force: force, detach: detach)
            if detach {
                guard let record = SlurmRunRecord.load(workdir: driver.pipeline.workdirPath), !record.stages.isEmpty else {
                    print("leakless: every stage's output exists; nothing submitted")
                    return
                }
                for stage in record.stages {
                    let jobs = (stage.jobs.isEmpty ? "" : (stage.sharded ? "\(stage.shards) shards, job \(stage.jobs.joined(separator: ", "))" : "job \(stage.jobs.joined(separator: ", "))"))
                    print("\(stage.stage): \(jobs)\(stage.merge.map { (jobs.isEmpty ? "" : "; ") + "merge job \($0)" } ?? "")")
                }
                print("submitted to Slurm; the last job (\(record.finish ?? "?")) writes the manifest and the benchmark link. 'leakless status --pipeline \(options.pipeline)' follows it")
                return
            }
            let ran = reports.filter(\.ran)
            print("leakless: \(reports.count) stages, \(ran.count) ran, \(reports.count - ran.count) skipped")
            print(RunSummary.table(reports, statusOnly: false))
            for report in reports where report.ran {
                guard let model = report.stats?.extra["model"] else { continue }
                func count(_ name: String) -> Int64 { model[name]?.intValue ?? 0 }
                print("\(report.stage.name): \(count("requests")) model request(s), \(count("prompt_tokens")) prompt + \(count("completion_tokens")) completion tokens, \(String(format1: model["cost_usd"]?.doubleValue ?? 0, digits: 4)) USD; cache \(count("cache_hits")) hit(s), \(count("cache_misses")) miss(es); \(count("reasks")) re-ask(s), \(count("refusals")) refusal(s)")
            }
            if only == nil, let table = try RunSummary.categories(benchmark: driver.benchmarkLink) {
                print("")
                print(table)
                print("")
                let layout = FileSystem.exists(FileSystem.join(driver.benchmarkLink, "data.json")) ? "data.json, imgs/" : "metadata.jsonl, imgs/"
                print("Benchmark: \(driver.benchmarkLink)/ (\(layout))")
                print("Rejects:   \(driver.store)/<stage>-<key>.rejects.jsonl; manifest: \(driver.manifestPath)")
            }
        }
    }
}

public struct StatusCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show each stage: cached or stale, its output, records in, out and rejected.")

    @OptionGroup var options: PipelineOptions

    public init() {}

    public func run() throws {
        try reportingErrors {
            let driver = try options.driver()
            let reports = try driver.plan().map { stage in
                PipelineDriver.StageReport(stage: stage, ran: false,
                                           stats: stage.isCached ? try? StageStats.load(path: stage.files.stats) : nil,
                                           wallSeconds: 0)
            }
            print(RunSummary.table(reports, statusOnly: true))
            print("store: \(driver.store)")
            if let slurm = SlurmStatus.describe(driver: driver) { print(slurm) }
            let spent = try driver.spentSoFar()
            let budget = driver.pipeline.budget
            var line = "spent on models in this workdir: \(String(format1: spent.usd, digits: 4)) USD, \(spent.requests) requests, \(spent.tokens) tokens"
            if budget.isLimited {
                line += " (budget: " + [budget.usd > 0 ? "\(budget.usd) USD" : nil, budget.requests > 0 ? "\(budget.requests) requests" : nil,
                                       budget.tokens > 0 ? "\(budget.tokens) tokens" : nil].compactMap { $0 }.joined(separator: ", ") + ")"
            }
            print(line)
            let review = ReviewStore(workdir: driver.pipeline.workdirPath)
            let decisions = try review.load().decisions
            if !decisions.isEmpty {
                let reviewers = ReviewState(decisions).reviewers
                print("review: \(decisions.count) decisions by \(reviewers.count) reviewer\(reviewers.count == 1 ? "" : "s") in \(review.path) (leakless review status)")
            }
        }
    }
}

public struct ValidateCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "validate", abstract: "Check an exported benchmark folder: data.json's fields and every image.")

    @Argument(help: "The benchmark folder (with data.json and imgs/, or metadata.jsonl), or its data.json.")
    var folder: String

    public init() {}

    public func run() throws {
        try reportingErrors {
            do {
                let report = try BenchmarkValidator.validate(folder: folder)
                print("\(folder): \(report.pairs) pairs, \(report.images) images, all valid")
            } catch let problems as BenchmarkValidator.Problems {
                FileHandleOutput.standardError(problems.description + "\n")
                throw ExitCode.failure
            }
        }
    }
}

public struct StagesCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "stages", abstract: "List the stages in order with what they read and write, and their parameters (Markdown).")

    public init() {}

    public func run() throws {
        print(StageTable.markdown(), terminator: "")
    }
}

/// A project file (a lexicon, a template folder, the model) named relative to the working
/// directory: there, else in the installed share folder; where neither has it, as given.
public func projectFile(_ path: String) -> String {
    if path.hasPrefix("/") || FileSystem.exists(path) { return path }
    let shared = FileSystem.join(installedShareFolder(), path)
    return FileSystem.exists(shared) ? shared : path
}

public struct InitCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Write the default pipeline.yaml into a folder, with comments for the model backends a user may have.")

    @Argument(help: "The folder (made if missing).")
    var folder: String

    public init() {}

    public func run() throws {
        try reportingErrors {
            let path = FileSystem.join(folder, PipelineConfig.defaultPath)
            guard !FileSystem.exists(path) else { throw ValidationError("\(path) exists already; nothing was written") }
            guard let shipped = Self.shippedPipeline() else {
                throw ValidationError("the default pipeline.yaml is neither in \(installedShareFolder()) nor in the project this leakless was built in")
            }
            let text = try FileSystem.readText(shipped)
            try FileSystem.createDirectory(folder)
            try AtomicFile.write(text, to: path)
            print("wrote \(path); run it with: leakless run --pipeline \(path)")
        }
    }

    /// The pipeline.yaml leakless ships: in the installed share folder, else in the project
    /// whose build this executable is (the folder above it that holds Package.swift).
    static func shippedPipeline() -> String? {
        let installed = FileSystem.join(installedShareFolder(), PipelineConfig.defaultPath)
        if FileSystem.exists(installed) { return installed }
        var folder = executableFolder()
        while folder != "/" && !folder.isEmpty {
            if FileSystem.exists(FileSystem.join(folder, "Package.swift")), FileSystem.exists(FileSystem.join(folder, PipelineConfig.defaultPath)) {
                return FileSystem.join(folder, PipelineConfig.defaultPath)
            }
            folder = FileSystem.parent(of: folder)
        }
        return nil
    }
}
