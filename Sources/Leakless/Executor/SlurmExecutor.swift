import Foundation
import LeaklessCore

/// What a Slurm run of a workdir submitted, kept in `<workdir>/slurm/run.json` for
/// `leakless status` and for the next run (which must not start beside a detached one).
public struct SlurmRunRecord: Codable, Sendable {
    public struct Stage: Codable, Sendable {
        public var stage: String
        public var key: String
        /// Shards of the stage; 1 for a stage run as one job.
        public var shards: Int
        public var sharded: Bool
        /// The array jobs of its shards, the first submission and each resubmission.
        public var jobs: [String]
        /// The job that merges the shards (detached runs; a waiting driver merges itself).
        public var merge: String?
    }

    public var pipeline: String
    public var detached: Bool
    public var submitted: String
    public var stages: [Stage]
    /// The job that writes the manifest and the benchmark link after a detached run.
    public var finish: String?

    public var allJobs: [String] { stages.flatMap { $0.jobs + ($0.merge.map { [$0] } ?? []) } + (finish.map { [$0] } ?? []) }

    public static func path(workdir: String) -> String { FileSystem.join(workdir, "slurm", "run.json") }

    public static func load(workdir: String) -> SlurmRunRecord? {
        guard let bytes = try? FileSystem.read(path(workdir: workdir)) else { return nil }
        return try? JSONDecoder().decode(SlurmRunRecord.self, from: Data(bytes))
    }

    func write(workdir: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(Array(try encoder.encode(self)) + [0x0A], to: Self.path(workdir: workdir))
    }
}

/// Runs stages as Slurm job arrays, in the manner of datatrove's SlurmPipelineExecutor: each
/// stage's input split into shards (`Sharding`), one array task a shard, writing the shard's files
/// in the store; then a merge writes the stage's own output, rejects and stats, the same bytes a
/// local run writes. A complete shard is never submitted again; a failed, cancelled, preempted or
/// timed-out one is resubmitted alone, up to `max_retries`.
struct SlurmExecutor {
    let driver: PipelineDriver
    let slurm = SlurmCommands()

    var pipeline: PipelineConfig { driver.pipeline }
    var folder: String { FileSystem.join(driver.absolute(pipeline.workdirPath), "slurm") }

    func settings(_ stage: PlannedStage) -> ExecutorSettings { pipeline.executor(for: stage.config) }

    /// Whether the stage's input is split (a stage that needs its whole input runs as one job).
    func isSharded(_ stage: PlannedStage) -> Bool {
        stage.config.definition.sharding.isShardable && settings(stage).tasks > 1
    }

    func shardFiles(_ stage: PlannedStage) -> ShardFiles { ShardFiles(stage: stage.files, count: settings(stage).tasks) }

    /// The run request of a stage run by Slurm: the budget is the pipeline's limits and each
    /// process reads what is left of them from the ledger when it starts; rate limits are shared
    /// among the shards that run at once.
    func request(_ stage: PlannedStage, upstream: [String]) throws -> String {
        var request = driver.request(stage, budget: pipeline.budget, upstream: upstream)
        request.ledger = driver.absolute(driver.ledgerPath)
        if isSharded(stage) {
            let settings = settings(stage)
            let atOnce = max(1, settings.maxParallel > 0 ? min(settings.maxParallel, settings.tasks) : settings.tasks)
            request.backends = request.backends.mapValues { backend in
                var settings = backend.settings
                for limit in ["rpm", "tpm"] {
                    if let value = settings[limit]?.intValue, value > 0 { settings[limit] = .int(max(1, value / Int64(atOnce))) }
                }
                return BackendConfig(name: backend.name, kind: backend.kind, settings: settings)
            }
        }
        try request.write(to: stage.files.request)
        return driver.absolute(stage.files.request)
    }

    /// Books in the ledger what the stage's shards spent and no merge booked yet (a stage that
    /// stopped, failed or was cancelled), so no later run can spend it again.
    func bookShardSpending(_ stage: PlannedStage) {
        guard stage.config.usesModels, isSharded(stage) else { return }
        let files = shardFiles(stage)
        for index in 0..<files.count where FileSystem.exists(files.spent(index)) {
            try? SpendingLedger.book(files.spent(index), into: driver.ledgerPath)
        }
    }

    enum JobKind {
        case shards([Int], of: Int)
        case whole
        case merge(Int)
        case finish

        var label: String {
            switch self {
            case .shards: return "shards"
            case .whole: return "stage"
            case .merge: return "merge"
            case .finish: return "finish"
            }
        }
    }

    func logFolder(_ stage: String) -> String { FileSystem.join(folder, stage) }

    /// The environment a job gets: what a stage needs from this one, the API key variables of
    /// its backends and what `env` lists.
    func exported(_ stage: PlannedStage?, _ settings: ExecutorSettings) -> String {
        var names: [String] = []
        for backend in (stage?.config.backends.values).map(Array.init) ?? [] {
            let variable = backend.typed.apiKeyEnv
            if !variable.isEmpty { names.append(variable) }
        }
        return Self.exported(names + settings.env)
    }

    /// The `--export` list: what a leakless process needs from this environment, and `names`.
    static func exported(_ names: [String]) -> String {
        let names = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "XDG_CACHE_HOME", "LEAKLESS_CACHE", "LEAKLESS_LOCAL_URL"] + names
        let environment = ProcessInfo.processInfo.environment
        var seen = Set<String>()
        let present = names.filter { environment[$0] != nil && seen.insert($0).inserted }
        return present.isEmpty ? "NONE" : present.joined(separator: ",")
    }

    /// Writes the batch script of one job and returns its path.
    func script(_ kind: JobKind, stageName: String, stage: PlannedStage?, settings: ExecutorSettings, request: String?) throws -> String {
        let executable = FileSystem.join(driver.executables, stage?.config.definition.executableName ?? "leakless")
        let command: [String]
        var indices = [0]
        switch kind {
        case .shards(let shards, let count):
            indices = shards
            command = [executable, "--request", request!, "--shard", "$SLURM_ARRAY_TASK_ID", "--shards", String(count)]
        case .whole:
            command = [executable, "--request", request!]
        case .merge(let count):
            command = [executable, "--request", request!, "--merge", "--shards", String(count)]
        case .finish:
            command = [executable, "run", "--pipeline", driver.absolute(pipeline.path), "--executor", "local"]
        }
        let name = kind.label == "shards" || kind.label == "stage" ? "leakless-\(stageName)" : stageName == kind.label ? "leakless-\(stageName)" : "leakless-\(stageName)-\(kind.label)"
        return try SlurmExecutor.script(name: name, label: kind.label, logs: logFolder(stageName), indices: indices, settings: settings,
                                        export: exported(stage, settings), command: command)
    }

    /// A batch script: an array job over `indices` (throttled by `max_parallel`), its logs in
    /// `logs/%A_%a.log`, the settings' options, and the command, which is told to stop and the
    /// job requeued a minute before the time limit.
    static func script(name: String, label: String, logs: String, indices: [Int], settings: ExecutorSettings, export: String, command: [String]) throws -> String {
        try FileSystem.createDirectory(logs)
        var lines = ["#!/bin/bash", "#SBATCH --job-name=\(name)"]
        lines.append("#SBATCH --array=\(arrayList(indices))\(settings.maxParallel > 0 && indices.count > 1 ? "%\(settings.maxParallel)" : "")")
        lines.append("#SBATCH --output=\(logs)/%A_%a.log")
        lines.append("#SBATCH --cpus-per-task=\(settings.cpusPerTask)")
        if !settings.partition.isEmpty { lines.append("#SBATCH --partition=\(settings.partition)") }
        if !settings.time.isEmpty { lines.append("#SBATCH --time=\(settings.time)") }
        if !settings.memPerCpu.isEmpty { lines.append("#SBATCH --mem-per-cpu=\(settings.memPerCpu)") }
        if !settings.account.isEmpty { lines.append("#SBATCH --account=\(settings.account)") }
        if !settings.qos.isEmpty { lines.append("#SBATCH --qos=\(settings.qos)") }
        lines.append("#SBATCH --export=\(export)")
        // A minute before the time limit the job is told, stops cleanly and requeues itself.
        lines.append("#SBATCH --signal=B:USR1@60")
        lines.append("#SBATCH --requeue")
        for argument in settings.sbatchArgs { lines.append("#SBATCH \(argument)") }
        lines += [
            "set -u",
            "cd \(quoted(FileManager.default.currentDirectoryPath))",
            "requeue() {",
            "  kill -TERM \"$child\" 2>/dev/null; wait \"$child\"",
            "  echo \"leakless: time limit near: requeued\" >&2",
            "  scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"",
            "  exit 0",
            "}",
            "trap requeue USR1",
            // When the task started, for the driver's figure of Slurm's overhead.
            "echo \"\(taskStartMarker)$(date +%s.%N)\"",
            command.map { $0.hasPrefix("$") ? "\"\($0)\"" : quoted($0) }.joined(separator: " ") + " &",
            "child=$!",
            "wait \"$child\"",
            "exit $?",
        ]
        let path = FileSystem.join(logs, "\(label)-\(ContentHash(ofString: lines.joined(separator: "\n")).hex.prefix(12)).sbatch")
        try AtomicFile.write(lines.joined(separator: "\n") + "\n", to: path)
        return path
    }

    static func quoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// "0-3,5,7-8" for the indices.
    static func arrayList(_ indices: [Int]) -> String {
        var parts: [String] = []
        var index = 0
        let sorted = indices.sorted()
        while index < sorted.count {
            var end = index
            while end + 1 < sorted.count && sorted[end + 1] == sorted[end] + 1 { end += 1 }
            parts.append(end == index ? "\(sorted[index])" : "\(sorted[index])-\(sorted[end])")
            index = end + 1
        }
        return parts.joined(separator: ",")
    }

    // MARK: waiting

    /// Runs one stage on Slurm and waits for it: its missing shards as an array job, each failed
    /// one again alone, then the merge (here, in the driver). Progress on stderr.
    func run(_ stage: PlannedStage, upstream: [String], record: inout SlurmRunRecord) throws {
        let settings = settings(stage)
        let request = try self.request(stage, upstream: upstream)
        let sharded = isSharded(stage)
        let count = sharded ? settings.tasks : 1
        let files = shardFiles(stage)
        // A rerun (--force, --from) starts the stage over: its shards too.
        if !sharded { try FileSystem.remove(stage.files.stats) }
        let isComplete: (Int) -> Bool = sharded ? { files.isComplete($0) } : { _ in stage.isCached }
        var entry = SlurmRunRecord.Stage(stage: stage.name, key: stage.key.hash.hex, shards: count, sharded: sharded, jobs: [])
        record.stages.append(entry)
        let position = record.stages.count - 1
        func submit(_ indices: [Int]) throws -> String {
            let script = try script(sharded ? .shards(indices, of: count) : .whole, stageName: stage.name, stage: stage, settings: settings, request: request)
            let job = try slurm.submit(script)
            entry.jobs.append(job)
            record.stages[position] = entry
            try record.write(workdir: driver.absolute(pipeline.workdirPath))
            return job
        }
        // What the shards spent is booked however the stage ends (a stopped stage is not merged).
        defer { bookShardSpending(stage) }
        try Self.wait(label: stage.name, logs: logFolder(stage.name), count: count, settings: settings, isComplete: isComplete, submit: submit)
        if sharded {
            let progress = Progress(label: stage.name)
            let merged = try StageRegistry.mergeShards(try StageRunRequest.load(path: request), count: count)
            progress.finish("merged \(count) shards: \(merged.recordsIn) read, \(merged.recordsOut) written, \(merged.rejected) rejected")
        }
    }

    /// Submits what is not complete and waits until every task is, resubmitting failed ones.
    static func wait(label stage: String, noun: String = "stage", logs: String, count: Int, settings: ExecutorSettings, isComplete: (Int) -> Bool, submit: ([Int]) throws -> String) throws {
        let slurm = SlurmCommands()
        func logPath(job: String, task: Int) -> String { FileSystem.join(logs, "\(job)_\(task).log") }
        let progress = Progress(label: stage, interval: 2)
        var running: [Int: String] = [:]
        var attempts: [Int: Int] = [:]
        var endedAt: [Int: Double] = [:]
        var retried = 0
        let missing = (0..<count).filter { !isComplete($0) }
        let skipped = count - missing.count
        if missing.isEmpty { return }
        let submittedAt = Date().timeIntervalSince1970
        let first = try submit(missing)
        for index in missing { running[index] = first }
        FileHandleOutput.standardError("[\(stage)] submitted \(missing.count) of \(count) task(s) as Slurm job \(first)\(skipped > 0 ? " (\(skipped) already complete)" : "")\n")
        let started = Progress.now()
        while !running.isEmpty {
            if let signal = Interruption.receivedSignal {
                slurm.cancel(Array(Set(running.values)))
                throw DriverError("interrupted (signal \(signal)) during stage '\(stage)': its Slurm jobs were cancelled; complete shards are kept, so 'leakless run' again resumes")
            }
            var statesByJob: [String: [Int: SlurmCommands.TaskState]] = [:]
            for job in Set(running.values) { statesByJob[job] = try slurm.states(of: job) }
            var active = (running: 0, pending: 0)
            for (index, job) in running.sorted(by: { $0.key < $1.key }) {
                if isComplete(index) {
                    running.removeValue(forKey: index)
                    continue
                }
                let state = statesByJob[job]?[index]
                if let state, state.isActive {
                    if state.state == "RUNNING" || state.state == "COMPLETING" { active.running += 1 } else { active.pending += 1 }
                    continue
                }
                // Ended without its completion marker. A marker written on another node may take
                // a moment to show on a shared filesystem: a few seconds' grace after "COMPLETED".
                if state?.state == "COMPLETED" {
                    let seen = endedAt[index] ?? Progress.now()
                    endedAt[index] = seen
                    if Progress.now() - seen < 10 { continue }
                }
                endedAt.removeValue(forKey: index)
                let how = state.map { "\($0.state), exit \($0.exitCode)" } ?? "no longer known to Slurm"
                let log = logPath(job: job, task: index)
                let what = "\(noun) '\(stage)'" + (count > 1 ? ", shard \(index) of \(count)" : "")
                if state?.exitCode == StageStopped.exitCode {
                    slurm.cancel(Array(Set(running.values)))
                    throw DriverError("\(what) stopped early (\(Self.lastLines(log, count: 1))); what finished is cached, so 'leakless run' again resumes (log \(log))")
                }
                attempts[index, default: 0] += 1
                if attempts[index]! > settings.maxRetries {
                    slurm.cancel(Array(Set(running.values)))
                    throw DriverError("\(what) failed \(attempts[index]!) time(s) (\(how)); nothing merged. Log \(log): \(Self.lastLines(log, count: 3))")
                }
                let again = try submit([index])
                running[index] = again
                retried += 1
                FileHandleOutput.standardError("[\(stage)] \(count > 1 ? "shard \(index)" : "job") ended without finishing (\(how), log \(log)): resubmitted as job \(again), attempt \(attempts[index]! + 1) of \(settings.maxRetries + 1)\n")
            }
            let done = (0..<count).filter(isComplete).count
            let elapsed = Progress.now() - started
            let newlyDone = done - skipped
            var line = "\(done)/\(count) done, \(active.running) running, \(active.pending) pending, \(retried) resubmitted"
            if newlyDone > 0 && done < count { line += ", ETA \(formatSeconds(elapsed / Double(newlyDone) * Double(count - done)))" }
            progress.tick(line)
            if running.isEmpty { break }
            Thread.sleep(forTimeInterval: settings.pollSeconds)
        }
        let waits = missing.compactMap { taskStart(logPath(job: first, task: $0)) }.map { max(0, $0 - submittedAt) }.sorted()
        let overhead = waits.isEmpty ? "" : "; submission to task start \(String(format: "%.2f", waits[0]))-\(String(format: "%.2f", waits[waits.count - 1])) s"
        progress.finish("\(count)/\(count) done on Slurm in \(formatSeconds(Progress.now() - started)), \(retried) resubmitted\(overhead)")
    }

    /// When a task's log says it started (seconds since 1970), if it says.
    static func taskStart(_ log: String) -> Double? {
        guard let bytes = try? FileSystem.read(log) else { return nil }
        for line in String(decoding: bytes.prefix(4096), as: UTF8.self).split(separator: "\n") where line.hasPrefix(taskStartMarker) {
            return Double(line.dropFirst(taskStartMarker.count).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// The first line of a task's log: when it started.
    static let taskStartMarker = "leakless: task started at "

    /// The last lines of a log, joined, for a one-line error.
    static func lastLines(_ path: String, count: Int) -> String {
        guard let bytes = try? FileSystem.read(path) else { return "(no log)" }
        let lines = String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("\u{1B}") && !$0.hasPrefix(taskStartMarker) }
        return lines.suffix(count).joined(separator: " | ")
    }

    // MARK: detached

    /// Submits every stage to run, chained by `afterok` dependencies (shards, then their merge,
    /// then the next stage), and a last job that writes the manifest and the benchmark link.
    func submitDetached(_ stages: [PlannedStage], plan: [PlannedStage]) throws -> SlurmRunRecord {
        var record = SlurmRunRecord(pipeline: driver.absolute(pipeline.path), detached: true, submitted: Self.now(), stages: [])
        var previous: [String] = []
        for stage in stages {
            let settings = settings(stage)
            let upstream = plan.prefix { $0.name != stage.name }.map(\.files.stats)
            let request = try self.request(stage, upstream: upstream)
            var entry = SlurmRunRecord.Stage(stage: stage.name, key: stage.key.hash.hex, shards: isSharded(stage) ? settings.tasks : 1,
                                             sharded: isSharded(stage), jobs: [])
            if isSharded(stage) {
                let missing = shardFiles(stage).missing
                if !missing.isEmpty {
                    let job = try slurm.submit(try script(.shards(missing, of: settings.tasks), stageName: stage.name, stage: stage, settings: settings, request: request),
                                               dependency: previous)
                    entry.jobs.append(job)
                    previous = [job]
                }
                let merge = try slurm.submit(try script(.merge(settings.tasks), stageName: stage.name, stage: stage, settings: settings, request: request),
                                             dependency: previous)
                entry.merge = merge
                previous = [merge]
            } else {
                try FileSystem.remove(stage.files.stats)
                let job = try slurm.submit(try script(.whole, stageName: stage.name, stage: stage, settings: settings, request: request), dependency: previous)
                entry.jobs.append(job)
                previous = [job]
            }
            record.stages.append(entry)
            try record.write(workdir: driver.absolute(pipeline.workdirPath))
        }
        record.finish = try slurm.submit(try script(.finish, stageName: "finish", stage: nil, settings: pipeline.executor, request: nil), dependency: previous)
        try record.write(workdir: driver.absolute(pipeline.workdirPath))
        return record
    }

    static func now() -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date())
    }

    /// The jobs of an earlier run of this workdir that Slurm still has queued or running.
    static func activeJobs(workdir: String) -> [String] {
        guard let record = SlurmRunRecord.load(workdir: workdir) else { return [] }
        let slurm = SlurmCommands()
        guard (try? SlurmCommands.locate("scontrol")) != nil else { return [] }
        return record.allJobs.filter { slurm.isActive($0) }
    }
}

/// `leakless audit --executor slurm`: the benchmark judged as a job array of shards, each this
/// command again with `--shard`, waited for like a stage's.
public enum SlurmAudit {
    public static func run(folder: String, settings: ExecutorSettings, command: [String], apiKeys: [String], isComplete: (Int) -> Bool) throws {
        let logs = FileSystem.join(folder, "slurm")
        let slurm = SlurmCommands()
        Interruption.install()
        try SlurmExecutor.wait(label: FileSystem.lastComponent(of: folder), noun: "audit", logs: logs, count: settings.tasks, settings: settings, isComplete: isComplete) { indices in
            let script = try SlurmExecutor.script(name: "leakless-audit", label: "audit", logs: logs, indices: indices, settings: settings,
                                                  export: SlurmExecutor.exported(apiKeys), command: command)
            return try slurm.submit(script)
        }
    }
}
