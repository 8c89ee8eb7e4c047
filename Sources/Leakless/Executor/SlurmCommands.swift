import Foundation
import LeaklessCore

/// The Slurm client commands the executor uses (`sbatch`, `scontrol`, `scancel`), run from PATH
/// with their output captured. Nothing here schedules: Slurm does.
public struct SlurmCommands: Sendable {
    public init() {}

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// What Slurm says of one array task (or plain job).
    public struct TaskState: Sendable, Equatable {
        public let state: String
        public let exitCode: Int32
        public let reason: String

        /// Still queued or running (a requeued task counts: it will run again).
        public var isActive: Bool {
            ["PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED", "STAGE_OUT", "SIGNALING", "STOPPED", "RESV_DEL_HOLD"]
                .contains(state)
        }
    }

    /// The path of a Slurm command, or an error that says Slurm is not installed here.
    static func locate(_ name: String) throws -> String {
        for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = FileSystem.join(String(folder), name)
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw Failure(description: "the Slurm executor needs '\(name)', which is not on PATH: install Slurm's client commands (Debian: slurm-client), or use 'executor: local'")
    }

    /// Runs a command; its standard output, or an error with its standard error.
    @discardableResult
    func capture(_ name: String, _ arguments: [String], allowFailure: Bool = false) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.locate(name))
        process.arguments = arguments
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read both before waiting: a full pipe would block the command.
        let outData = output.fileHandleForReading.readDataToEndOfFile()
        let errData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let result = (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
        if result.0 != 0 && !allowFailure {
            let message = result.2.trimmingCharacters(in: .whitespacesAndNewlines)
            throw Failure(description: "\(name) \(arguments.prefix(3).joined(separator: " ")) failed (exit \(result.0)): \(message.isEmpty ? result.1 : message)")
        }
        return result
    }

    /// Submits a batch script; the job id (`sbatch --parsable`).
    public func submit(_ script: String, dependency: [String] = []) throws -> String {
        var arguments = ["--parsable"]
        if !dependency.isEmpty {
            arguments += ["--dependency=afterok:" + dependency.joined(separator: ":"), "--kill-on-invalid-dep=yes"]
        }
        let (_, output, _) = try capture("sbatch", arguments + [script])
        // "jobid" or "jobid;cluster".
        guard let id = output.split(whereSeparator: \.isNewline).last?.split(separator: ";").first, !id.isEmpty,
            id.allSatisfy(\.isNumber)
        else { throw Failure(description: "sbatch \(script) answered '\(output.trimmingCharacters(in: .whitespacesAndNewlines))', not a job id") }
        return String(id)
    }

    /// The state of each task of a job (by array index; a plain job is index 0), as `scontrol`
    /// knows it. A job Slurm no longer knows (ended longer ago than MinJobAge) gives nothing.
    public func states(of job: String) throws -> [Int: TaskState] {
        let (status, output, error) = try capture("scontrol", ["-o", "show", "job", job], allowFailure: true)
        if status != 0 {
            if error.contains("Invalid job id") { return [:] }
            throw Failure(description: "scontrol show job \(job) failed (exit \(status)): \(error.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        var states: [Int: TaskState] = [:]
        for line in output.split(whereSeparator: \.isNewline) {
            var fields: [String: String] = [:]
            for token in line.split(separator: " ") {
                guard let equals = token.firstIndex(of: "=") else { continue }
                let key = String(token[..<equals])
                if fields[key] == nil { fields[key] = String(token[token.index(after: equals)...]) }
            }
            let state = fields["JobState"] ?? "UNKNOWN"
            let exit = Int32(fields["ExitCode"]?.split(separator: ":").first ?? "0") ?? 0
            let task = TaskState(state: state, exitCode: exit, reason: fields["Reason"] ?? "")
            guard let tasks = fields["ArrayTaskId"] else {
                states[0] = task
                continue
            }
            for index in Self.expand(tasks) { states[index] = task }
        }
        return states
    }

    /// "3", "0-7%2", "1,4-5" -> the indices.
    static func expand(_ list: String) -> [Int] {
        let body = list.split(separator: "%").first ?? ""
        var indices: [Int] = []
        for part in body.split(separator: ",") {
            let bounds = part.split(separator: "-")
            if bounds.count == 2, let low = Int(bounds[0]), let high = Int(bounds[1]), low <= high {
                indices += Array(low...high)
            } else if let single = Int(part) {
                indices.append(single)
            }
        }
        return indices
    }

    /// Whether Slurm still has the job queued or running.
    public func isActive(_ job: String) -> Bool {
        ((try? states(of: job)) ?? [:]).values.contains(where: \.isActive)
    }

    public func cancel(_ jobs: [String]) {
        guard !jobs.isEmpty else { return }
        _ = try? capture("scancel", jobs, allowFailure: true)
    }
}
