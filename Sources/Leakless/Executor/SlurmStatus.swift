import LeaklessCore

/// What `leakless status` says of the workdir's last Slurm run: each stage's shards complete,
/// running, pending and failed, and the merge.
public enum SlurmStatus {
    public static func describe(driver: PipelineDriver) -> String? {
        let workdir = driver.pipeline.workdirPath
        guard let record = SlurmRunRecord.load(workdir: workdir) else { return nil }
        let slurm = SlurmCommands()
        let plan = (try? driver.plan()) ?? []
        var lines = ["slurm: \(record.detached ? "detached" : "waiting") run submitted \(record.submitted) (\(SlurmRunRecord.path(workdir: workdir)))"]
        for stage in record.stages {
            var counts: [String: Int] = [:]
            for job in stage.jobs {
                for (_, task) in (try? slurm.states(of: job)) ?? [:] { counts[task.state, default: 0] += 1 }
            }
            var complete = 0
            if let planned = plan.first(where: { $0.name == stage.stage }) {
                let files = ShardFiles(stage: planned.files, count: stage.shards)
                complete = stage.sharded ? (0..<stage.shards).filter(files.isComplete).count : (planned.isCached ? 1 : 0)
                if planned.key.hash.hex != stage.key { lines.append("  \(stage.stage): submitted under another key (the pipeline changed since)") }
            }
            var line = "  \(stage.stage): \(complete)/\(stage.shards) \(stage.sharded ? "shards" : "job") complete"
            let states = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key.lowercased())" }
            if !states.isEmpty { line += "; Slurm: " + states.joined(separator: ", ") }
            line += "; jobs \(stage.jobs.joined(separator: ", "))"
            if let merge = stage.merge {
                let state = ((try? slurm.states(of: merge)) ?? [:])[0]?.state.lowercased() ?? "ended"
                line += "; merge job \(merge) \(state)"
            }
            lines.append(line)
        }
        if let finish = record.finish {
            let state = ((try? slurm.states(of: finish)) ?? [:])[0]
            lines.append("  finish job \(finish): \(state?.state.lowercased() ?? "ended")\(state?.reason.isEmpty == false && state?.reason != "None" ? " (\(state!.reason))" : "")")
        }
        return lines.joined(separator: "\n")
    }
}
