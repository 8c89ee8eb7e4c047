import ArgumentParser
import Foundation
import Leakless
import LeaklessCore

/// The options every stage executable takes: the run request the driver wrote, or, for a run by
/// hand, what it reads and writes and a JSON object of its parameters.
public struct StageOptions: ParsableArguments {
    @Option(help: "The run request the driver wrote (JSON): every other option comes from it.")
    public var request: String?

    @Option(help: "The previous stage's records (JSONL); for extract, the taxonomy (YAML).")
    public var input: String?

    @Option(help: "Where to write the stage's records (JSONL), atomically.")
    public var output: String?

    @Option(help: "Where to write rejected records with their reasons (JSONL).")
    public var rejects: String?

    @Option(help: "Where to write the run's counters (JSON); written last.")
    public var stats: String?

    @Option(help: "The stage's parameters: a JSON object (defaults fill in what is missing).")
    public var config: String?

    @Option(help: "The folder of the stage's templates and schema (default: stages/<stage>).")
    public var templates: String?

    @Option(help: "The blob store folder for image bytes.")
    public var blobs: String = "out/blobs"

    @Option(help: "The request cache folder for model replies.")
    public var cache: String = "out/cache"

    @Option(help: "For export: the benchmark folder to write.")
    public var folder: String?

    @Option(help: "With --request: run only this shard of the stage's input (0 to --shards - 1), into the shard's files.")
    public var shard: Int?

    @Option(help: "With --shard or --merge: how many shards the input is split into.")
    public var shards: Int?

    @Flag(help: "With --request and --shards: join the complete shards into the stage's output, rejects and stats.")
    public var merge = false

    public init() {}

    public func validate() throws {
        if shard != nil || merge || shards != nil {
            guard request != nil, let shards, shards >= 1 else {
                throw ValidationError("'--shard' and '--merge' take '--request FILE' and '--shards N' (N at least 1)")
            }
            if merge && shard != nil { throw ValidationError("give '--shard' or '--merge', not both") }
            if !merge && shard == nil { throw ValidationError("'--shards' goes with '--shard I' or '--merge'") }
            if let shard, !(0..<shards).contains(shard) {
                throw ValidationError("'--shard' must be from 0 to \(shards - 1), found \(shard)")
            }
        }
        if request != nil {
            if input != nil || output != nil || rejects != nil || config != nil {
                throw ValidationError("'--request' holds the whole run: give it alone")
            }
            return
        }
        guard input != nil, output != nil, rejects != nil else {
            throw ValidationError("give '--request FILE', or '--input', '--output' and '--rejects' for a run by hand")
        }
        if output == rejects { throw ValidationError("'--output' and '--rejects' must be different files") }
    }

    /// The request of this run: the driver's file, or one made of the options.
    func runRequest(stage: String) throws -> StageRunRequest {
        if let request { return try StageRunRequest.load(path: request) }
        var parameters: [String: JSONValue] = [:]
        if let config {
            let value: JSONValue
            do {
                value = try JSONParser.parse(bytes: try FileSystem.read(config))
            } catch let error as JSONParser.SyntaxError {
                throw LocatedError(path: config, line: nil, message: "invalid JSON: \(error)")
            }
            guard case .object(let given) = value else {
                throw LocatedError(path: config, line: nil, message: "expected a JSON object of parameters")
            }
            parameters = given
        }
        return StageRunRequest(
            stage: stage, input: input!, output: output!, rejects: rejects!, stats: stats, folder: folder,
            templates: templates ?? "stages/\(stage)", blobs: blobs, cache: cache, parameters: parameters)
    }

    /// Runs the stage; a failure prints one line and exits non-zero, leaving no output behind.
    public func run(stage: String) throws {
        prepareProcess()
        // Started by the driver: end with it, so no stage runs on unwatched.
        if let driver = ProcessInfo.processInfo.environment["LEAKLESS_DRIVER_PID"].flatMap(Int32.init),
            !Interruption.endWithParent(driver) {
            FileHandleOutput.standardError("leakless-\(stage): the driver that started this stage has ended\n")
            throw ExitCode.failure
        }
        do {
            let request = try runRequest(stage: stage)
            if let shard, let shards {
                try StageRegistry.runShard(request, shard: try ShardSpec(index: shard, count: shards))
            } else if merge, let shards {
                try StageRegistry.mergeShards(request, count: shards)
            } else {
                try StageRegistry.run(request)
            }
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
