import Foundation
import XCTest
import Synchronization

@testable import Leakless
@testable import LeaklessCore
@testable import LeaklessMockServer
@testable import LeaklessModels
@testable import LeaklessNetwork

#if canImport(Glibc)
    import Glibc
#endif

/// The defects found by testing as a demanding user would, each kept fixed: nothing lost,
/// nothing paid twice, nothing read where it should not be.
final class ReliabilityTests: XCTestCase {
    // MARK: - Reading only inside the folders given

    func testAuditNeverOpensAnImageOutsideItsFolder() throws {
        let folder = try temporaryFolder(self)
        let images = FileSystem.join(folder, "imgs"), secret = FileSystem.join(folder, "secret")
        try FileSystem.createDirectory(images)
        try FileSystem.createDirectory(secret)
        try FileManager.default.copyItem(atPath: fixture("small.png"), toPath: FileSystem.join(images, "ok.png"))
        try FileManager.default.copyItem(atPath: fixture("grey.jpg"), toPath: FileSystem.join(secret, "x.jpg"))
        try FileManager.default.createSymbolicLink(atPath: FileSystem.join(images, "link.jpg"), withDestinationPath: "../secret/x.jpg")
        let server = try scriptedServer(self) { _, _, _ in chatAnswer(#"{"verdict": "clean", "spans": [], "score": 0.1, "pair_harmful": false}"#) }
        let backend = testBackend(.openAIChat, name: "judge", baseURL: server.baseURL + "/v1", ["max_in_flight": 2])
        let paths = ["ok.png", "../secret/x.jpg", FileSystem.join(secret, "x.jpg"), "../../../../../../etc/passwd", "link.jpg", "missing.png"]
        let items = paths.enumerated().map { index, path -> AuditItem in
            var item = AuditItem(id: "\(index)", query: "What is shown here, number \(index)?", location: "items.jsonl:\(index + 1)")
            item.image = path
            return item
        }
        let (findings, failed) = try AuditJudge.model(
            items, backend: backend, templates: FileSystem.join(projectRoot, "stages/detect"), cache: FileSystem.join(folder, "cache"),
            work: FileSystem.join(folder, "work"), images: images)
        XCTAssertEqual(findings.map(\.item.image), ["ok.png"])
        XCTAssertEqual(failed.count, 5)
        for (item, why) in failed {
            XCTAssertTrue(why.hasPrefix("image-refused: "), "\(item.image ?? ""): \(why)")
        }
        XCTAssertTrue(failed.first { $0.0.image == "link.jpg" }!.1.contains("resolves to a path outside it"))
        XCTAssertEqual(server.requests.count, 1, "only the item inside the folder was sent")
        let secretBase64 = Data(try FileSystem.read(FileSystem.join(secret, "x.jpg"))).base64EncodedString()
        XCTAssertFalse(server.requests.contains { $0.bodyText.contains(String(secretBase64.prefix(200))) })
    }

    func testReportRefusesAFolderOfSomeoneElsesFiles() throws {
        let folder = try projectCopy(self)
        XCTAssertEqual(try runExecutable("leakless", ["run"], in: folder).status, 0)
        let mine = FileSystem.join(folder, "mine")
        try write("my notes", to: FileSystem.join(mine, "notes.txt"))
        let refused = try runExecutable("leakless", ["report", "--output", "mine"], in: folder)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("holds files that are not a leakless report; nothing was written"), refused.stderr)
        XCTAssertEqual(try FileSystem.readText(FileSystem.join(mine, "notes.txt")), "my notes")
        // A report written before is replaced, as is an empty folder.
        XCTAssertEqual(try runExecutable("leakless", ["report", "--output", "fresh"], in: folder).status, 0)
        XCTAssertEqual(try runExecutable("leakless", ["report", "--output", "fresh"], in: folder).status, 0)
    }

    // MARK: - Nothing paid for twice

    func testIdenticalRequestsInFlightShareOneCall() throws {
        let server = try scriptedServer(self) { _, _, _ in chatAnswer("same answer", delay: 0.3) }
        let backend = testBackend(.openAIChat, baseURL: server.baseURL + "/v1", ["max_in_flight": 8])
        let session = try ModelSession(backends: [backend], cache: try temporaryFolder(self), budget: Budget())
        let chat = session.chat(backend)
        let answers = Mutex<[String]>([])
        WorkerPool.run(workers: 8) { worker in
            let reply = try? chat.complete([ChatMessage(role: "user", text: "the same question")], http: session.http(worker))
            answers.withLock { $0.append(reply?.text ?? "failed") }
        }
        XCTAssertEqual(answers.withLock { $0 }, Array(repeating: "same answer", count: 8))
        XCTAssertEqual(server.requests.count, 1, "seven waited for the first and read its reply")
        XCTAssertEqual(session.meter["shared_in_flight"], 7)
    }

    func testTheImageStageDrawsEachDistinctPromptOnce() throws {
        let server = try MockServer(handler: MockModel(latency: 0.2).handle)
        addTeardownBlock { server.stop() }
        let folder = try temporaryFolder(self)
        let images = testBackend(.openAIImages, name: "dalle", baseURL: server.baseURL + "/v1", ["model": "dall-e-3", "max_in_flight": 6])
        let context = StageContext(templates: FileSystem.join(projectRoot, "stages/image"), blobs: FileSystem.join(folder, "blobs"),
                                   backends: ["backend": images], cache: FileSystem.join(folder, "cache"))
        let stage = try GenerateImage.stage(context, parameters: try ImageStage.parameters([:]))
        // Three rewrites of each of two seeds share their seed's description.
        let records = (0..<6).map { index in
            Record(["kind": "query", "parents": [], "query": .string("Question \(index) about this?"), "safety_reason": "r",
                    "image_description": .string(index < 3 ? "A crowbar at a window." : "A lighter near a curtain.")])
        }
        let sink = MemorySink()
        try StageRunner(stageName: "image", schema: nil).run(
            concurrent: stage, source: ArrayRecordSource(path: "queries", records: records.enumerated().map { ($0.offset + 1, $0.element) }),
            sink: sink)
        XCTAssertEqual(sink.records.count, 6)
        XCTAssertEqual(server.requests.filter { $0.path == "/v1/images/generations" }.count, 2)
    }

    func testAKeyEchoedInAGoodReplyIsStoredNowhere() throws {
        let secret = "sk-echo-7a6b5c4d3e"
        let server = try MockServer { request in
            chatAnswer(#"{"answer": "you sent \#(request.headers["authorization"] ?? "")"}"#)
        }
        addTeardownBlock { server.stop() }
        let cache = try temporaryFolder(self)
        let backend = testBackend(.openAIChat, baseURL: server.baseURL + "/v1", ["api_key_env": "LEAKLESS_TEST_KEY"])
        let session = try ModelSession(backends: [backend], cache: cache, budget: Budget(), environment: ["LEAKLESS_TEST_KEY": secret])
        let reply = try session.chat(backend).complete([ChatMessage(role: "user", text: "echo")], http: session.http(0))
        XCTAssertFalse(reply.text.contains(secret), reply.text)
        XCTAssertTrue(reply.text.contains("[redacted]"))
        XCTAssertEqual(try files(under: cache, containing: secret), [])
    }

    func testTheBudgetIsTheWorkdirsAcrossRuns() throws {
        let server = try MockServer(handler: MockModel().handle)
        addTeardownBlock { server.stop() }
        let folder = try projectCopy(self)
        try write("""
        workdir: out
        budget:
          requests: 5
        backends:
          gpt:
            kind: openai-chat
            base_url: \(server.baseURL)/v1
            model: gpt-4o
            max_in_flight: 1
        stages:
          extract:
            backend: gpt
            categories: [Violent]

        """, to: FileSystem.join(folder, "pipeline.yaml"))
        let first = try runExecutable("leakless", ["run"], in: folder)
        XCTAssertNotEqual(first.status, 0)
        XCTAssertEqual(server.requests.count, 5)
        // Running again does not start a new allowance.
        let second = try runExecutable("leakless", ["run"], in: folder)
        XCTAssertNotEqual(second.status, 0)
        XCTAssertTrue(second.stderr.contains("the budget in pipeline.yaml is spent"), second.stderr)
        XCTAssertEqual(server.requests.count, 5, "nothing more was sent")
        let status = try runExecutable("leakless", ["status"], in: folder)
        XCTAssertTrue(status.stdout.contains("spent on models in this workdir: 0.0000 USD, 5 requests"), status.stdout)
        XCTAssertTrue(status.stdout.contains("(budget: 5 requests)"), status.stdout)
    }

    /// A kept-alive connection the server closes under a request: libcurl sends it again on a
    /// fresh connection by itself; that second send is counted too.
    func testADropThatLibcurlResendsIsCounted() throws {
        let server = try scriptedServer(self) { _, marker, count in
            marker == "again" && count == 0 ? .drop(delay: 0) : chatAnswer("ok")
        }
        let backend = testBackend(.openAIChat, baseURL: server.baseURL + "/v1", ["max_retries": 3])
        let session = try ModelSession(backends: [backend], cache: try temporaryFolder(self), budget: Budget())
        let chat = session.chat(backend)
        let http = session.http(0)
        _ = try chat.complete([ChatMessage(role: "user", text: "[[first]]")], http: http)
        _ = try chat.complete([ChatMessage(role: "user", text: "[[again]]")], http: http)
        XCTAssertEqual(server.requests.count, 3)
        XCTAssertEqual(chat.endpoint.counters["dropped_connections_resent_by_libcurl"], 1, "\(chat.endpoint.counters.snapshot)")
        XCTAssertEqual(chat.endpoint.counters["dropped_connections_resent_by_libcurl"] + chat.endpoint.counters["dropped_connections"], 1,
                       "every send the server saw is accounted for")
        XCTAssertEqual(chat.endpoint.counters["http_requests"] + chat.endpoint.counters["dropped_connections_resent_by_libcurl"], 3)
    }

    // MARK: - Stages never outlive the driver

    func slowPipeline(_ url: String) -> String {
        """
        workdir: out
        backends:
          builtin:
            kind: builtin
          gpt:
            kind: openai-chat
            base_url: \(url)/v1
            model: gpt-4o
            max_in_flight: 2
        stages:
          extract:
            backend: builtin
            categories: [Violent]
          rewrite:
            backend: gpt

        """
    }

    /// `leakless run` on the slow pipeline, started and left running until the server has had
    /// ten requests.
    func runUntilTenRequests() throws -> (MockServer, String, Process) {
        let server = try MockServer(handler: MockModel(latency: 0.05).handle)
        addTeardownBlock { server.stop() }
        let folder = try projectCopy(self)
        try write(slowPipeline(server.baseURL), to: FileSystem.join(folder, "pipeline.yaml"))
        let driver = try startExecutable("leakless", ["run"], in: folder)
        while server.requests.count < 10 { Thread.sleep(forTimeInterval: 0.01) }
        return (server, folder, driver)
    }

    /// SIGTERM to the driver alone (as `timeout` sends it): the stage stops, writes what finished,
    /// and nothing keeps sending; the next run resumes without asking a finished item again.
    func testATerminatedDriverStopsItsStageAndTheNextRunResumes() throws {
        let (server, folder, driver) = try runUntilTenRequests()
        kill(driver.processIdentifier, SIGTERM)
        driver.waitUntilExit()
        XCTAssertNotEqual(driver.terminationStatus, 0)
        let afterStop = server.requests.count
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertEqual(server.requests.count, afterStop, "no stage goes on sending after the driver ended")
        XCTAssertLessThan(afterStop, 36)

        let resumed = try runExecutable("leakless", ["run"], in: folder)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let bodies = server.requests.map(\.bodyText)
        XCTAssertEqual(Set(bodies).count, 36, "every seed asked")
        XCTAssertLessThanOrEqual(bodies.count - Set(bodies).count, 2, "at most the requests in flight at the stop went twice")
    }

    /// kill -9 of the driver: the stage it started ends too.
    func testAStageEndsWhenItsDriverIsKilled() throws {
        let (server, folder, driver) = try runUntilTenRequests()
        kill(driver.processIdentifier, SIGKILL)
        driver.waitUntilExit()
        Thread.sleep(forTimeInterval: 0.3)
        let afterKill = server.requests.count
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertEqual(server.requests.count, afterKill, "the orphaned stage stopped")
        XCTAssertLessThan(afterKill, 36)
        // The lock died with the driver: a new run goes ahead and finishes.
        XCTAssertEqual(try runExecutable("leakless", ["run"], in: folder).status, 0)
    }

    // MARK: - Bad input

    func testNestedBracketsAreReadInLinearTime() {
        // Quadratic reading took minutes on 400 KB of this; it must simply finish.
        let nested = String(repeating: "[", count: 400_000) + String(repeating: "]", count: 400_000)
        XCTAssertNil(StructuredReply.extractJSON("Here: " + nested))
        XCTAssertNil(StructuredReply.extractJSON(nested))
        XCTAssertEqual(StructuredReply.extractJSON("Sure. " + nested + #" and {"a": 1}"#), ["a": 1])
    }

    func testALoneSurrogateIsReportedAsBrokenJSON() {
        let reply = #"{"answer": "\ud800", "notes": ["x"]}"#
        XCTAssertNil(StructuredReply.extractJSON(reply), "not the array inside it")
        XCTAssertTrue(StructuredReply.syntaxProblem(reply)?.contains("unpaired high surrogate") == true, StructuredReply.syntaxProblem(reply) ?? "")
    }

    func testAnOverlongJSONLLineIsAnErrorNotMemory() throws {
        let folder = try temporaryFolder(self)
        let path = FileSystem.join(folder, "big.jsonl")
        try write("{\"n\":1}\n{\"s\":\"" + String(repeating: "x", count: 3 << 20) + "\"}\n", to: path)
        let reader = try LineReader(path: path, maximumLineBytes: 1 << 20)
        XCTAssertNotNil(try reader.nextLine())
        XCTAssertThrowsError(try reader.nextLine()) { error in
            XCTAssertEqual("\(error)", "\(path):2: the line is longer than 1 MiB: not a record")
        }
    }

    func testHashFailsWhenAFileCannotBeRead() throws {
        let folder = try temporaryFolder(self)
        try FileManager.default.copyItem(atPath: fixture("not-an-image.png"), toPath: FileSystem.join(folder, "bad.png"))
        let result = try runExecutable("leakless", ["hash", "bad.png"], in: folder)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stdout.contains("\"error\":\"not-an-image\""), result.stdout)
        try FileManager.default.copyItem(atPath: fixture("small.png"), toPath: FileSystem.join(folder, "good.png"))
        XCTAssertEqual(try runExecutable("leakless", ["hash", "good.png"], in: folder).status, 0)
    }
}

/// Starts a built executable in `folder` without waiting for it (its output is discarded).
func startExecutable(_ name: String, _ arguments: [String], in folder: String) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: FileSystem.join(try executablesFolder(), name))
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: folder)
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    return process
}
