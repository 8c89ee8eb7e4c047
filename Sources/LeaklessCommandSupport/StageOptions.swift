import ArgumentParser
import Leakless
import LeaklessCore

#if canImport(Glibc)
    import Glibc
#endif

/// The options every stage executable takes: what it reads, what it writes, and its config.
public struct StageOptions: ParsableArguments {
    @Option(help: "The previous stage's records (JSONL); for extract, the taxonomy (YAML).")
    public var input: String

    @Option(help: "Where to write the stage's records (JSONL), atomically.")
    public var output: String

    @Option(help: "Where to write rejected records with their reasons (JSONL).")
    public var rejects: String

    @Option(help: "Where to write the run's counters (JSON); written last.")
    public var stats: String?

    @Option(help: "The stage's resolved parameters: a JSON object (defaults fill in what is missing).")
    public var config: String

    @Option(help: "The folder of the stage's templates and schema (default: stages/<stage>).")
    public var templates: String?

    @Option(help: "The blob store folder for image bytes.")
    public var blobs: String = "out/blobs"

    @Option(help: "The request cache folder for model replies (unless the config names one).")
    public var cache: String = "out/cache"

    @Option(help: "For export: the benchmark folder to write.")
    public var folder: String?

    public init() {}

    /// Runs the stage; a failure prints one line and exits non-zero, leaving no output behind.
    public func run(stage: String) throws {
        var invocation = StageInvocation(
            stage: stage, input: input, output: output, rejects: rejects, stats: stats, config: config,
            templates: templates ?? "stages/\(stage)", blobs: blobs, folder: folder)
        invocation.cache = cache
        do {
            try invocation.run()
        } catch let error as ExitCode {
            throw error
        } catch let stopped as StageStopped {
            FileHandleOutput.standardError("leakless-\(stage): \(stopped)\n")
            throw ExitCode(StageStopped.exitCode)
        } catch {
            FileHandleOutput.standardError("leakless-\(stage): \(error)\n")
            throw ExitCode.failure
        }
    }
}

extension StageOptions {
    public func validate() throws {
        if output == rejects { throw ValidationError("'--output' and '--rejects' must be different files") }
    }
}
