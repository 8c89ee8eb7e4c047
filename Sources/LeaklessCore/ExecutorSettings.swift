/// Where a pipeline's stages run: in this process's children on this machine (`local`), or as
/// Slurm job arrays (`slurm`), each stage's input split into `tasks` shards. Read from
/// pipeline.yaml's `executor:` (a name, or a mapping of the settings below) and from a stage's
/// own `executor:` mapping, which overrides what it names.
public struct ExecutorSettings: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case local, slurm
    }

    @Parameter("kind", .choice(of: Kind.self), default: "local", "local: on this machine; slurm: as Slurm job arrays")
    public var kind: Kind
    /// Shards per stage (a stage that needs its whole input runs as one job whatever this says).
    @Parameter("tasks", .integer(1...100_000), default: 1, "shards per stage")
    public var tasks: Int
    /// At most this many of a stage's shards run at once (the array throttle `%N`); 0: no limit.
    @Parameter("max_parallel", .integer(0...100_000), default: 0, "shards of a stage running at once (the array's %N); 0: no limit")
    public var maxParallel: Int
    @Parameter("partition", .string, default: "", "the Slurm partition; empty: the cluster's default")
    public var partition: String
    /// The time limit of each job, in Slurm's form ("30", "1:00:00", "2-00:00:00"); empty: the partition's.
    @Parameter("time", .string, default: "", "each job's time limit (MM, HH:MM:SS, D-HH:MM:SS); empty: the partition's")
    public var time: String
    @Parameter("cpus_per_task", .integer(1...4096), default: 1, "CPUs of each job")
    public var cpusPerTask: Int
    /// Memory per CPU in Slurm's form ("2G", "512M", "4096"); empty: the cluster's default.
    @Parameter("mem_per_cpu", .string, default: "", "memory per CPU (2G, 512M, 4096); empty: the cluster's default")
    public var memPerCpu: String
    @Parameter("account", .string, default: "", "the account charged")
    public var account: String
    @Parameter("qos", .string, default: "", "the quality of service")
    public var qos: String
    /// More `sbatch` options, passed as written.
    @Parameter("sbatch_args", .stringList, default: .array([]), "more sbatch options, as written")
    public var sbatchArgs: [String]
    /// Environment variables passed through to the jobs (an API key's variable, say).
    @Parameter("env", .stringList, default: .array([]), "environment variables passed to the jobs")
    public var env: [String]
    /// How often a failed, cancelled, preempted or timed-out shard is submitted again.
    @Parameter("max_retries", .integer(0...100), default: 2, "resubmissions of a shard that failed, was cancelled, preempted or timed out")
    public var maxRetries: Int
    /// How often the driver asks Slurm how its jobs are doing, in seconds.
    @Parameter("poll_seconds", .number(0.1...3600), default: 2.0, "how often Slurm is asked how the jobs are doing")
    public var pollSeconds: Double

    /// The defaults.
    public init() {}

    /// The settings, by their pipeline.yaml names, with their types: those declared above.
    public static let fields = StageParameter.declared(in: ExecutorSettings())

    /// The options the driver sets itself, which `sbatch_args` may not name.
    static let driverOptions = ["--array", "-a", "--output", "-o", "--error", "-e", "--dependency", "-d", "--parsable", "--wrap", "--job-name", "-J", "--signal", "--requeue", "--no-requeue"]

    /// These settings with `values` (checked names and values) laid over them.
    public func applying(_ values: [String: JSONValue]) -> ExecutorSettings {
        guard !values.isEmpty, case .object(var merged)? = try? JSONValue.encoding(self) else { return self }
        merged.merge(values) { $1 }
        guard let settings = try? JSONValue.object(merged).decode(ExecutorSettings.self) else {
            preconditionFailure("executor settings checked against their declarations must decode")
        }
        return settings
    }

    /// What is wrong with a setting's value beyond its type, or nil.
    public static func problem(_ name: String, _ value: JSONValue) -> String? {
        switch name {
        case "time":
            guard let text = value.stringValue, !text.isEmpty else { return nil }
            return isSlurmTime(text) ? nil : "'time' must be a Slurm time limit (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS), found '\(text)'"
        case "mem_per_cpu":
            guard let text = value.stringValue, !text.isEmpty else { return nil }
            let digits = text.prefix { $0.isASCII && $0.isNumber }
            let unit = text.dropFirst(digits.count)
            return !digits.isEmpty && (unit.isEmpty || ["K", "M", "G", "T"].contains(unit.uppercased()))
                ? nil : "'mem_per_cpu' must be a size such as 2G, 512M or 4096 (megabytes), found '\(text)'"
        case "env":
            for variable in value.stringArray ?? [] where !isVariableName(variable) {
                return "'env' lists environment variable NAMES (letters, digits, _), found '\(variable)'"
            }
            return nil
        case "sbatch_args":
            for argument in value.stringArray ?? [] {
                let option = String(argument.split(separator: "=", maxSplits: 1).first ?? "")
                if driverOptions.contains(option) {
                    return "'sbatch_args' may not set \(option): leakless sets it for each job"
                }
            }
            return nil
        case "partition", "account", "qos":
            guard let text = value.stringValue else { return nil }
            return text.contains(where: { $0 == " " || $0 == "\n" || $0 == "," && name != "partition" })
                ? "'\(name)' must be one Slurm name, found '\(text)'" : nil
        default:
            return nil
        }
    }

    static func isVariableName(_ text: String) -> Bool {
        guard let first = text.first, first == "_" || (first.isASCII && first.isLetter) else { return false }
        return text.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }

    static func isSlurmTime(_ text: String) -> Bool {
        if ["infinite", "unlimited"].contains(text.lowercased()) { return true }
        func numbers(_ part: Substring, most: Int) -> Bool {
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            return (1...most).contains(fields.count) && fields.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }
        }
        let dayParts = text.split(separator: "-", omittingEmptySubsequences: false)
        switch dayParts.count {
        case 1: return numbers(dayParts[0], most: 3)
        case 2: return !dayParts[0].isEmpty && dayParts[0].allSatisfy { $0.isASCII && $0.isNumber } && numbers(dayParts[1], most: 3)
        default: return false
        }
    }
}
