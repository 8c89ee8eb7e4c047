/// Where a pipeline's stages run: in this process's children on this machine (`local`), or as
/// Slurm job arrays (`slurm`), each stage's input split into `tasks` shards. Read from
/// pipeline.yaml's `executor:` (a name, or a mapping of the settings below) and from a stage's
/// own `executor:` mapping, which overrides what it names.
public struct ExecutorSettings: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case local, slurm
    }

    public var kind: Kind = .local
    /// Shards per stage (a stage that needs its whole input runs as one job whatever this says).
    public var tasks = 1
    /// At most this many of a stage's shards run at once (the array throttle `%N`); 0: no limit.
    public var maxParallel = 0
    public var partition = ""
    /// The time limit of each job, in Slurm's form ("30", "1:00:00", "2-00:00:00"); empty: the partition's.
    public var time = ""
    public var cpusPerTask = 1
    /// Memory per CPU in Slurm's form ("2G", "512M", "4096"); empty: the cluster's default.
    public var memPerCPU = ""
    public var account = ""
    public var qos = ""
    /// More `sbatch` options, passed as written.
    public var sbatchArgs: [String] = []
    /// Environment variables passed through to the jobs (an API key's variable, say).
    public var env: [String] = []
    /// How often a failed, cancelled, preempted or timed-out shard is submitted again.
    public var maxRetries = 2
    /// How often the driver asks Slurm how its jobs are doing, in seconds.
    public var pollSeconds = 2.0

    public init() {}

    /// The settings, by their pipeline.yaml names, with their types.
    public static let fields: [StageParameter] = [
        StageParameter("kind", .choice(of: Kind.self), default: "local", "local: on this machine; slurm: as Slurm job arrays"),
        StageParameter("tasks", .integer(1...100_000), default: 1, "shards per stage"),
        StageParameter("max_parallel", .integer(0...100_000), default: 0, "shards of a stage running at once (the array's %N); 0: no limit"),
        StageParameter("partition", .string, default: "", "the Slurm partition; empty: the cluster's default"),
        StageParameter("time", .string, default: "", "each job's time limit (MM, HH:MM:SS, D-HH:MM:SS); empty: the partition's"),
        StageParameter("cpus_per_task", .integer(1...4096), default: 1, "CPUs of each job"),
        StageParameter("mem_per_cpu", .string, default: "", "memory per CPU (2G, 512M, 4096); empty: the cluster's default"),
        StageParameter("account", .string, default: "", "the account charged"),
        StageParameter("qos", .string, default: "", "the quality of service"),
        StageParameter("sbatch_args", .stringList, default: .array([]), "more sbatch options, as written"),
        StageParameter("env", .stringList, default: .array([]), "environment variables passed to the jobs"),
        StageParameter("max_retries", .integer(0...100), default: 2, "resubmissions of a shard that failed, was cancelled, preempted or timed out"),
        StageParameter("poll_seconds", .number(0.1...3600), default: 2.0, "how often Slurm is asked how the jobs are doing"),
    ]

    /// The options the driver sets itself, which `sbatch_args` may not name.
    static let driverOptions = ["--array", "-a", "--output", "-o", "--error", "-e", "--dependency", "-d", "--parsable", "--wrap", "--job-name", "-J", "--signal", "--requeue", "--no-requeue"]

    /// These settings with `values` (checked names and values) laid over them.
    public func applying(_ values: [String: JSONValue]) -> ExecutorSettings {
        var settings = self
        for (name, value) in values {
            switch name {
            case "kind": settings.kind = value.stringValue.flatMap(Kind.init(rawValue:)) ?? settings.kind
            case "tasks": settings.tasks = Int(value.intValue ?? 1)
            case "max_parallel": settings.maxParallel = Int(value.intValue ?? 0)
            case "partition": settings.partition = value.stringValue ?? ""
            case "time": settings.time = value.stringValue ?? ""
            case "cpus_per_task": settings.cpusPerTask = Int(value.intValue ?? 1)
            case "mem_per_cpu": settings.memPerCPU = value.stringValue ?? ""
            case "account": settings.account = value.stringValue ?? ""
            case "qos": settings.qos = value.stringValue ?? ""
            case "sbatch_args": settings.sbatchArgs = value.stringArray ?? []
            case "env": settings.env = value.stringArray ?? []
            case "max_retries": settings.maxRetries = Int(value.intValue ?? 2)
            case "poll_seconds": settings.pollSeconds = value.doubleValue ?? 2
            default: break
            }
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
