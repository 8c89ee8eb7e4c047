import ArgumentParser
import Foundation
import Synchronization
import LeaklessCore
import LeaklessMockServer
import LeaklessModels
import LeaklessNetwork

#if canImport(Glibc)
    import Glibc
#endif

public struct MockServerCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "mock-server",
        abstract: "Serve stand-in model endpoints on 127.0.0.1 (chat completions, images API, SD WebUI txt2img), to try a pipeline offline.")

    @Option(help: "Port (0: any free port; the port is printed).")
    var port: Int = 8000

    @Option(help: "Seconds each reply waits.")
    var latency: Double = 0

    @Option(help: "Require 'Authorization: Bearer <key>' with the key held in this environment variable.")
    var apiKeyEnv: String?

    @Flag(help: "Answer a chat request with an image as llama.cpp's server does without a vision projector (500).")
    var noVision = false

    @Option(help: "The context window in tokens (four characters a token); a longer prompt gets 400. 0: unlimited.")
    var contextTokens: Int = 0

    @Option(help: "Append a line for each request received to this file: its path and the hash of its body (to count requests sent twice).")
    var log: String?

    public init() {}

    public func run() throws {
        var model = MockModel(latency: latency, vision: !noVision, contextTokens: contextTokens)
        if let apiKeyEnv { model.apiKey = ProcessInfo.processInfo.environment[apiKeyEnv] }
        let handler = model
        let logFile = try log.map { path -> FileHandle in
            try FileSystem.createDirectory(FileSystem.parent(of: path))
            // Appended to, so the file may be emptied between runs while the server goes on.
            let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
            guard descriptor >= 0 else { throw ValidationError("cannot write the request log \(path)") }
            return FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        }
        let logLock = NSLock()
        let server = try MockServer(port: port) { request in
            if let logFile {
                let line = JSONWriter.canonical(["path": .string(request.path), "body": .string(ContentHash(of: request.body).hex)]) + "\n"
                logLock.lock()
                logFile.write(Data(line.utf8))
                logLock.unlock()
            }
            return handler.handle(request)
        }
        FileHandle.standardOutput.write(Data("listening on \(server.baseURL) (chat: \(server.baseURL)/v1, SD WebUI: \(server.baseURL))\n".utf8))
        while true { sleep(3600) }
    }
}

public struct BenchClientCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bench-client",
        abstract: "Benchmark the chat client against a local mock server with a fixed reply latency; prints figures and writes them to a file.")

    @Option(help: "Chat requests to send.")
    var requests: Int = 2000

    @Option(help: "Requests in flight.")
    var inFlight: Int = 32

    @Option(help: "The server's reply latency in seconds.")
    var latency: Double = 0.2

    @Option(help: "Where to write the figures (JSON).")
    var output: String = "bench/chat-client.json"

    public init() {}

    public func run() throws {
        // The server runs in its own process so the client's CPU and memory are measured alone.
        let server = Process()
        server.executableURL = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        server.arguments = ["mock-server", "--port", "0", "--latency", String(latency)]
        let pipe = Pipe()
        server.standardOutput = pipe
        try server.run()
        defer { server.terminate() }
        var banner = Data()
        while !banner.contains(UInt8(ascii: "\n")) {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { throw ValidationError("the mock server did not start") }
            banner.append(chunk)
        }
        let line = String(decoding: banner, as: UTF8.self)
        guard let range = line.range(of: "http://127.0.0.1:"), let port = Int(line[range.upperBound...].prefix(while: \.isNumber)) else {
            throw ValidationError("unexpected mock server banner: \(line)")
        }

        let cacheFolder = FileManager.default.temporaryDirectory.appendingPathComponent("leakless-bench-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: cacheFolder) }
        let backend = BackendConfig(name: "bench", kind: "openai-chat", settings: [
            "base_url": .string("http://127.0.0.1:\(port)/v1"), "model": "mock", "api_key_env": "", "max_in_flight": .int(Int64(inFlight)),
            "rpm": 0, "tpm": 0, "timeout": 30, "max_retries": 3, "retry_base_seconds": 0.1, "temperature": 0, "max_tokens": 64,
            "seed": .null, "json_mode": "text", "vision": true, "max_reasks": 0, "price_prompt": 0, "price_completion": 0,
        ])
        let session = try ModelSession(backends: [backend], cache: cacheFolder, budget: Budget())
        let client = session.chat(backend)

        let total = requests
        let shared = Mutex((next: 0, failures: 0, rssSamples: [Int]()))
        let before = Self.cpuSeconds()
        let started = Date()
        WorkerPool.run(workers: inFlight) { worker in
            while true {
                let index = shared.withLock { state -> Int in
                    defer { state.next += 1 }
                    if state.next > 0 && state.next % max(1, total / 8) == 0 { state.rssSamples.append(ProcessMemory.residentKiB()) }
                    return state.next
                }
                guard index < total else { break }
                let messages = [ChatMessage(role: "user", text: "Benchmark request \(index): reply OK.")]
                do {
                    _ = try client.complete(messages, http: session.http(worker))
                } catch {
                    shared.withLock { $0.failures += 1 }
                }
            }
        }
        let wall = Date().timeIntervalSince(started)
        let (failures, rssSamples) = shared.withLock { ($0.failures, $0.rssSamples) }
        let cpu = Self.cpuSeconds() - before
        let ideal = Double(inFlight) / latency
        let rate = Double(total) / wall
        let figures: JSONValue = [
            "requests": .int(Int64(total)), "in_flight": .int(Int64(inFlight)), "latency_seconds": .double(latency),
            "failures": .int(Int64(failures)), "wall_seconds": .double((wall).rounded(places: 3)),
            "requests_per_second": .double((rate).rounded(places: 1)), "ideal_requests_per_second": .double((ideal).rounded(places: 1)),
            "share_of_ideal": .double((rate / ideal).rounded(places: 3)),
            "client_cpu_ms_per_request": .double((cpu * 1000 / Double(total)).rounded(places: 3)),
            "resident_kib_samples": .array(rssSamples.map { .int(Int64($0)) }),
            "cpus": .int(Int64(ProcessInfo.processInfo.activeProcessorCount)),
        ]
        try AtomicFile.write(JSONWriter.pretty(figures), to: output)
        print("""
            chat client: \(total) requests, \(inFlight) in flight, \(Int(latency * 1000)) ms server latency
              \(String(format1: rate, digits: 1)) requests/s (ideal \(String(format1: ideal, digits: 1)); \(String(format1: rate / ideal * 100, digits: 1))% of ideal) in \(String(format1: wall, digits: 2)) s
              client CPU \(String(format1: cpu * 1000 / Double(total), digits: 3)) ms per request; failures \(failures)
              resident memory (KiB) through the run: \(rssSamples.map(String.init).joined(separator: ", "))
              written to \(output)
            """)
    }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }
}
