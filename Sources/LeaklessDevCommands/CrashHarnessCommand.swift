import ArgumentParser
import Foundation
import LeaklessCore
import LeaklessMockServer

#if canImport(Glibc)
    import Glibc
#endif

/// Kills `leakless run` at random moments and checks that nothing is lost, nothing paid for is
/// sent twice, and nothing is left behind: against the local stand-in server with latency, the
/// pipeline is run once uninterrupted, then again in a fresh workdir with `--kills` kill -9s of
/// the driver or of its stage, each followed by a resumed run; the two must write the same
/// bytes.
public struct CrashHarnessCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "crash-harness",
        abstract: "kill -9 the driver or its stage at random moments, resume, and check the outputs, the repeated requests and the leftovers; prints figures and writes them to a file.")

    @Option(help: "How many kills.")
    var kills: Int = 20

    @Option(help: "Seed of the kill moments and targets.")
    var seed: UInt64 = 1

    @Option(help: "The server's reply latency in seconds.")
    var latency: Double = 0.02

    @Option(help: "The project folder whose stages/ and data/ are used.")
    var project: String = "."

    @Option(help: "Where to write the figures (JSON).")
    var output: String = "bench/crash-harness.json"

    public init() {}

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    public func run() throws {
        let leakless = FileSystem.join(FileSystem.parent(of: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")), "leakless")
        let work = FileSystem.join(NSTemporaryDirectory(), "leakless-crash-\(getpid())")
        defer { try? FileSystem.remove(work) }
        let maxInFlight = 3

        // The uninterrupted reference.
        let referenceServer = try MockServer(handler: MockModel(latency: latency).handle)
        defer { referenceServer.stop() }
        let reference = try prepare(FileSystem.join(work, "reference"), server: referenceServer, maxInFlight: maxInFlight)
        guard try runToEnd(leakless, in: reference) == 0 else { throw Failure(description: "the uninterrupted run failed") }

        // The same run, killed again and again.
        let server = try MockServer(handler: MockModel(latency: latency).handle)
        defer { server.stop() }
        let killed = try prepare(FileSystem.join(work, "killed"), server: server, maxInFlight: maxInFlight)
        var random = seed == 0 ? 0x9E3779B97F4A7C15 : seed
        func next() -> Double {
            random = random &* 6364136223846793005 &+ 1442695040888963407
            return Double(random >> 11) / Double(1 << 53)
        }
        var killsDone = 0, driverKills = 0, stageKills = 0, finishedBeforeKill = 0
        let progress = Progress(label: "crash-harness")
        while killsDone < kills {
            let driver = try start(leakless, in: killed)
            let moment = 0.05 + next() * 1.5
            Thread.sleep(forTimeInterval: moment)
            var status: Int32 = 0
            if waitpid(driver, &status, WNOHANG) == driver {
                // The run finished before the moment came: start over from nothing.
                finishedBeforeKill += 1
                try FileSystem.remove(FileSystem.join(killed, "out/store"))
                try FileSystem.remove(FileSystem.join(killed, "out/benchmark"))
                continue
            }
            let stage = children(of: driver).first
            if let stage, next() < 0.5 {
                kill(stage, SIGKILL)
                stageKills += 1
            } else {
                kill(driver, SIGKILL)
                driverKills += 1
            }
            waitpid(driver, &status, 0)
            // A stage whose driver died ends by itself; wait until it has.
            if let stage { while kill(stage, 0) == 0 { Thread.sleep(forTimeInterval: 0.01) } }
            killsDone += 1
            progress.tick("\(killsDone) of \(kills) kills")
        }
        guard try runToEnd(leakless, in: killed) == 0 else { throw Failure(description: "the resumed run failed") }
        progress.finish("\(killsDone) kills")

        // Outputs: every store file but the stats and requests (timings, paths), and the export.
        var differing: [String] = []
        let referenceStore = FileSystem.join(reference, "out/store"), killedStore = FileSystem.join(killed, "out/store")
        let compared = try FileSystem.files(under: referenceStore).filter { !$0.hasSuffix(".stats.json") && !$0.hasSuffix(".request.json") }
        for file in compared where (try? FileSystem.read(FileSystem.join(killedStore, file))) != (try FileSystem.read(FileSystem.join(referenceStore, file))) {
            differing.append(file)
        }
        // Requests answered 200 that went twice (the stand-in answers everything with 200).
        let bodies = server.requests.map(\.bodyText)
        let repeated = bodies.count - Set(bodies).count
        let leftovers = try temporaryFiles(in: FileSystem.join(killed, "out"))
        // A stage has at most max_in_flight records in flight, each waiting on one request.
        let bound = killsDone * maxInFlight
        let figures: JSONValue = [
            "kills": .int(Int64(killsDone)), "driver_kills": .int(Int64(driverKills)), "stage_kills": .int(Int64(stageKills)),
            "runs_finished_before_their_kill": .int(Int64(finishedBeforeKill)),
            "files_compared": .int(Int64(compared.count)), "files_differing": .array(differing.map { .string($0) }),
            "requests_reference": .int(Int64(referenceServer.requests.count)), "requests_killed_runs": .int(Int64(bodies.count)),
            "requests_repeated": .int(Int64(repeated)), "repeated_bound_in_flight": .int(Int64(bound)),
            "temporary_files_left": .array(leftovers.map { .string($0) }), "seed": .int(Int64(bitPattern: seed)),
        ]
        try AtomicFile.write(JSONWriter.pretty(figures), to: output)
        print("""
            crash harness: \(killsDone) kills (\(driverKills) of the driver, \(stageKills) of a stage), seed \(seed)
              outputs: \(compared.count - differing.count) of \(compared.count) store files byte-identical to the uninterrupted run
              requests: \(bodies.count) sent over the killed runs, \(referenceServer.requests.count) in the uninterrupted one; \(repeated) repeated (bound: \(bound), what was in flight at the kills)
              temporary files left: \(leftovers.count)
              written to \(output)
            """)
        guard differing.isEmpty, repeated <= bound, leftovers.isEmpty else {
            throw Failure(description: "crash harness failed: \(differing.count) differing file(s), \(repeated) repeated request(s), \(leftovers.count) leftover(s)")
        }
    }

    /// A workdir with the project's inputs and a pipeline whose every model role is the server.
    func prepare(_ folder: String, server: MockServer, maxInFlight: Int) throws -> String {
        try FileSystem.createDirectory(folder)
        for item in ["stages", "data"] {
            try FileManager.default.copyItem(atPath: FileSystem.join(project, item), toPath: FileSystem.join(folder, item))
        }
        try AtomicFile.write("""
            workdir: out
            backends:
              gpt:
                kind: openai-chat
                base_url: \(server.baseURL)/v1
                model: gpt-4o
                max_in_flight: \(maxInFlight)
                retry_base_seconds: 0.05
              sd:
                kind: sd-webui
                base_url: \(server.baseURL)
                max_in_flight: \(maxInFlight)
                seed: 42
            stages:
              extract:
                backend: gpt
                categories: [Violent, Privacy]
              rewrite:
                backend: gpt
              detect:
                backend: gpt
              image:
                backend: sd
                prompt_writer: gpt
                verifier: gpt
              filter:
                backend: gpt
              dedup:
                max_queries_per_image: 3
              export:
                format: vlsbench

            """, to: FileSystem.join(folder, "pipeline.yaml"))
        return folder
    }

    func start(_ executable: String, in folder: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = [strdup(executable), strdup("run"), strdup("--pipeline"), strdup(FileSystem.join(folder, "pipeline.yaml")), nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard status == 0 else { throw Failure(description: "cannot start \(executable): \(String(cString: strerror(status)))") }
        return pid
    }

    func runToEnd(_ executable: String, in folder: String) throws -> Int32 {
        let pid = try start(executable, in: folder)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return (status >> 8) & 0xFF
    }

    /// The processes whose parent is `pid` (the stage the driver is waiting for).
    func children(of pid: pid_t) -> [pid_t] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return names.compactMap { name -> pid_t? in
            guard let child = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && pid_t(fields[1]) == pid ? child : nil
        }
    }

    func temporaryFiles(in folder: String) throws -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: folder) else { return [] }
        var found: [String] = []
        for case let path as String in walker where FileSystem.lastComponent(of: path).contains(".tmp-") { found.append(path) }
        return found
    }
}
