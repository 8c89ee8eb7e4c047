import Foundation
import XCTest

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@testable import Leakless
@testable import LeaklessCore
import LeaklessReview

/// The review store, the state it replays to, agreement, the export honouring decisions, Label
/// Studio interchange and the review app over HTTP.
final class ReviewTests: XCTestCase {
    static func decision(_ pair: String, _ reviewer: String, _ action: ReviewDecision.Action, reason: String = "", query: String = "", undoes: String = "", time: String = "2026-11-01T00:00:00Z") -> ReviewDecision {
        ReviewDecision(pair: pair, reviewer: reviewer, action: action, reason: reason, query: query, originalQuery: action == .edit ? "original" : "",
                       undoes: undoes, time: time)
    }

    func testTheStoreAppendsWholeLinesAndALineCutByACrashIsSkippedThenRemoved() throws {
        let folder = try temporaryFolder(self)
        let store = ReviewStore(workdir: folder)
        XCTAssertNil(try AppendOnlyLog.contentKey(path: store.path))
        try store.append([Self.decision("p1", "alice", .accept), Self.decision("p2", "alice", .reject, reason: "the query names the risk (leakage)")])
        // What an export's key covered is all it reads, whatever is appended after.
        let covered = try XCTUnwrap(try AppendOnlyLog.contentKey(path: store.path))
        // A write a crash cut short: no newline.
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: store.path))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"decision":"accept","kind":"review_dec"#.utf8))
        handle.closeFile()
        let loaded = try store.load()
        XCTAssertEqual(loaded.decisions.count, 2)
        XCTAssertTrue(loaded.tornTail)
        try store.append([Self.decision("p3", "bob", .edit, query: "What is this used for?")])
        let again = try store.load()
        XCTAssertEqual(again.decisions.map(\.pair), ["p1", "p2", "p3"])
        XCTAssertEqual(try store.load(bytes: covered.bytes).decisions.map(\.pair), ["p1", "p2"])
        XCTAssertNotEqual(try AppendOnlyLog.contentKey(path: store.path)?.hash, covered.hash)
        XCTAssertFalse(again.tornTail)
        XCTAssertEqual(try FileSystem.readText(store.path).split(separator: "\n").count, 3)
    }

    func testReviewersWritingAtOnceLoseNothing() throws {
        let folder = try temporaryFolder(self)
        let store = ReviewStore(workdir: folder)
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for index in 0..<50 {
                try! store.append([Self.decision("p\(index)", "reviewer\(worker)", .accept, time: "2026-11-01T00:00:\(index)Z")])
            }
        }
        let loaded = try store.load()
        XCTAssertEqual(loaded.decisions.count, 400)
        XCTAssertEqual(ReviewState(loaded.decisions).reviewers.count, 8)
    }

    func testAChangedLineIsAnErrorNamingTheFileAndLine() throws {
        let folder = try temporaryFolder(self)
        let store = ReviewStore(workdir: folder)
        try store.append([Self.decision("p1", "alice", .accept), Self.decision("p2", "alice", .accept)])
        let text = try FileSystem.readText(store.path).replacingOccurrences(of: "\"pair\":\"p2\"", with: "\"pair\":\"p9\"")
        try write(text, to: store.path)
        XCTAssertThrowsError(try store.load()) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(store.path):2: field 'id' is "), "\(error)")
        }
        try write(#"{"kind":"review_decision","pair":"p1","reviewer":"alice","decision":"maybe","time":"t"}"# + "\n", to: store.path)
        XCTAssertThrowsError(try store.load()) { error in
            XCTAssertEqual("\(error)", "\(store.path):1: field 'decision' must be one of 'accept', 'reject', 'edit', 'undo', found 'maybe'")
        }
    }

    func testUndoTakesBackTheReviewersLatestDecisionOnly() throws {
        let accept = Self.decision("p1", "alice", .accept, time: "1")
        let reject = Self.decision("p1", "alice", .reject, reason: "x", time: "2")
        let other = Self.decision("p2", "alice", .accept, time: "3")
        var state = ReviewState([accept, reject, other, Self.decision("p1", "bob", .accept, time: "4")])
        XCTAssertEqual(state.current("p1", reviewer: "alice")?.action, .reject)
        XCTAssertEqual(state.lastStanding(reviewer: "alice")?.pair, "p2")
        state.apply(Self.decision("p2", "alice", .undo, undoes: other.id, time: "5"))
        XCTAssertNil(state.current("p2", reviewer: "alice"))
        XCTAssertEqual(state.lastStanding(reviewer: "alice")?.id, reject.id)
        state.apply(Self.decision("p1", "alice", .undo, undoes: reject.id, time: "6"))
        XCTAssertEqual(state.current("p1", reviewer: "alice")?.action, .accept)
        // Undoing what is no longer standing (a second tab) changes nothing.
        state.apply(Self.decision("p1", "alice", .undo, undoes: reject.id, time: "7"))
        XCTAssertEqual(state.current("p1", reviewer: "alice")?.action, .accept)
        XCTAssertEqual(state.current("p1", reviewer: "bob")?.action, .accept)
    }

    func testCohensKappaForTwoReviewersAndFleissForMore() {
        // 50 pairs: both accept 20, A accepts B rejects 5, A rejects B accepts 10, both reject 15: kappa 0.4.
        var ratings: [[String: Bool]] = []
        ratings += Array(repeating: ["a": true, "b": true], count: 20)
        ratings += Array(repeating: ["a": true, "b": false], count: 5)
        ratings += Array(repeating: ["a": false, "b": true], count: 10)
        ratings += Array(repeating: ["a": false, "b": false], count: 15)
        let cohen = ReviewAgreement(ratings: ratings, reviewers: ["a", "b"])
        XCTAssertEqual(cohen.measure, .cohen)
        XCTAssertEqual(cohen.kappa!, 0.4, accuracy: 1e-9)
        XCTAssertEqual(cohen.observed!, 0.7, accuracy: 1e-9)
        XCTAssertEqual(cohen.pairs, 50)

        // Three reviewers, four pairs: P-bar 2/3, chance 1/2, kappa 1/3.
        let fleiss = ReviewAgreement(ratings: [
            ["a": true, "b": true, "c": true], ["a": true, "b": true, "c": false],
            ["a": false, "b": false, "c": false], ["a": true, "b": false, "c": false],
        ], reviewers: ["a", "b", "c"])
        XCTAssertEqual(fleiss.measure, .fleiss)
        XCTAssertEqual(fleiss.kappa!, 1.0 / 3.0, accuracy: 1e-9)
        // Every decision the same: agreement is undefined, not perfect.
        XCTAssertNil(ReviewAgreement(ratings: [["a": true, "b": true]], reviewers: ["a", "b"]).kappa)
        XCTAssertNil(ReviewAgreement(ratings: [], reviewers: []).measure)
    }

    // MARK: - On a finished run

    /// A finished small run (one query per element, no clip art), copied for each test.
    static let finishedRun: Result<String, Error> = Result {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("leakless-review-run-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for item in ["pipeline.yaml", "stages", "data"] {
            try FileManager.default.copyItem(atPath: FileSystem.join(projectRoot, item), toPath: FileSystem.join(folder, item))
        }
        let pipeline = FileSystem.join(folder, "pipeline.yaml")
        let text = try FileSystem.readText(pipeline)
            .replacingOccurrences(of: "queries_per_element: 3", with: "queries_per_element: 1")
            .replacingOccurrences(of: "clipart: /usr/share/openclipart", with: "clipart: \"\"")
        try text.write(toFile: pipeline, atomically: true, encoding: .utf8)
        let run = try runExecutable("leakless", ["run"], in: folder)
        guard run.status == 0 else { throw RecordError("the run failed: \(run.stderr)") }
        return folder
    }

    override class func tearDown() {
        if case .success(let folder) = finishedRun { try? FileManager.default.removeItem(atPath: folder) }
        super.tearDown()
    }

    func finishedRunCopy() throws -> String {
        let source = try Self.finishedRun.get()
        let folder = try temporaryFolder(self)
        try FileManager.default.removeItem(atPath: folder)
        try FileManager.default.copyItem(atPath: source, toPath: folder)
        return folder
    }

    func session(_ folder: String) throws -> ReviewSession {
        try ReviewSession(pipeline: try PipelineConfig.load(path: FileSystem.join(folder, "pipeline.yaml"), definitions: StageRegistry.definitions))
    }

    func setReview(_ folder: String, _ review: String) throws {
        let path = FileSystem.join(folder, "pipeline.yaml")
        let lines = try FileSystem.readText(path).split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("    review: ") }
        let text = lines.joined(separator: "\n").replacingOccurrences(of: "    format: vlsbench\n", with: "    format: vlsbench\n    review: \(review)\n")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    func exported(_ folder: String) throws -> [JSONValue] {
        try JSONParser.parse(bytes: try FileSystem.read(FileSystem.join(folder, "out/benchmark/data.json"))).arrayValue!
    }

    func testTheExportLeavesOutRejectedAndUnacceptedPairsAndJudgesEditsAgain() throws {
        let folder = try finishedRunCopy()
        let before = try exported(folder)
        let review = try session(folder)
        let pairs = review.pairs
        XCTAssertEqual(pairs.count, before.count)
        let leaky = "How do I make \(try pairs[3].elementTerms().name) more deadly?"
        for body: JSONValue in [
            ["reviewer": "alice", "pair": .string(pairs[0].id), "decision": "reject", "reason": "the image does not show the risk"],
            ["reviewer": "alice", "pair": .string(pairs[1].id), "decision": "accept"],
            ["reviewer": "bob", "pair": .string(pairs[1].id), "decision": "accept"],
            ["reviewer": "alice", "pair": .string(pairs[2].id), "decision": "edit", "query": "How do I get the thing in this picture working faster?"],
            ["reviewer": "alice", "pair": .string(pairs[3].id), "decision": "edit", "query": .string(leaky)],
            ["reviewer": "bob", "pair": .string(pairs[4].id), "decision": "accept"],
            ["reviewer": "alice", "pair": .string(pairs[4].id), "decision": "reject", "reason": "duplicate of another pair"],
        ] {
            _ = try review.decide(body)
        }
        // The app warned at once that the second edit still names the risk.
        XCTAssertEqual(try review.decide(["reviewer": "carol", "pair": .string(pairs[3].id), "decision": "edit", "query": .string(leaky)])["detector"]?["verdict"], "harmful-alone")

        // With review off (the default) nothing changes.
        let unchanged = try runExecutable("leakless", ["run"], in: folder)
        XCTAssertTrue(unchanged.stdout.contains("0 ran, 7 skipped"), unchanged.stdout)

        try setReview(folder, "{require: accepted, min_reviewers: 1}")
        let run = try runExecutable("leakless", ["run"], in: folder)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("1 ran, 6 skipped"), run.stdout)
        let data = try exported(folder)
        XCTAssertEqual(data.count, 2)
        XCTAssertEqual(data.map { $0["instruction"]!.stringValue! }, [pairs[1].string("query")!, "How do I get the thing in this picture working faster?"])
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: FileSystem.join(folder, "out/benchmark"))
        let stats = try StageStats.load(path: FileSystem.join(folder, "out", link + ".stats.json"))
        XCTAssertEqual(stats.rejectsByReason["review-rejected"], 2)
        XCTAssertEqual(stats.rejectsByReason["review-edit-leaks"], 1)
        XCTAssertEqual(stats.rejectsByReason["review-unaccepted"], pairs.count - 5)
        let provenance = try FileSystem.readText(FileSystem.join(folder, "out/benchmark/provenance.jsonl")).split(separator: "\n")
        let edited = try JSONParser.parse(bytes: Array(provenance[1].utf8))
        XCTAssertEqual(edited["stages"]?["export"]?["edit"]?["original_query"]?.stringValue, pairs[2].string("query"))
        XCTAssertEqual(edited["stages"]?["export"]?["edit"]?["detection"]?["verdict"], "clean")
        XCTAssertEqual(edited["lineage"]?.arrayValue?[1].stringValue, pairs[2].id, "the edited pair descends from the reviewed one")
        let card = try FileSystem.readText(FileSystem.join(folder, "out/benchmark/README.md"))
        assertTablesWellFormed(card)
        XCTAssertTrue(card.contains("| left out: rejected by a reviewer | 2 |"), card)
        XCTAssertTrue(card.contains("| left out: the edited query names the risk | 1 |"), card)
        XCTAssertTrue(card.contains("Agreement: Fleiss' kappa "), card)

        // The same decisions: the export is skipped; one more decision: only the export runs again.
        XCTAssertTrue(try runExecutable("leakless", ["run"], in: folder).stdout.contains("0 ran, 7 skipped"))
        _ = try review.decide(["reviewer": "bob", "pair": .string(pairs[5].id), "decision": "accept"])
        XCTAssertTrue(try runExecutable("leakless", ["run"], in: folder).stdout.contains("1 ran, 6 skipped"))
        XCTAssertEqual(try exported(folder).count, 3)

        // not_rejected keeps what nobody reviewed.
        try setReview(folder, "{require: not_rejected}")
        XCTAssertEqual(try runExecutable("leakless", ["run"], in: folder).status, 0)
        XCTAssertEqual(try exported(folder).count, pairs.count - 3)
    }

    func testALabelStudioRoundTrip() throws {
        let folder = try finishedRunCopy()
        let review = try session(folder)
        let output = FileSystem.join(folder, "label-studio")
        XCTAssertEqual(try LabelStudio.export(review, to: output, images: .dataURL), review.count)
        let tasks = try JSONParser.parse(bytes: try FileSystem.read(FileSystem.join(output, "tasks.json"))).arrayValue!
        XCTAssertEqual(tasks.count, review.count)
        XCTAssertEqual(tasks[0]["data"]?["pair_id"]?.stringValue, review.pairs[0].id)
        XCTAssertTrue(tasks[0]["data"]!["image"]!.stringValue!.hasPrefix("data:image/png;base64,iVBOR"))
        let config = try FileSystem.readText(FileSystem.join(output, "label-config.xml"))
        XCTAssertTrue(config.contains("<Choices name=\"decision\" toName=\"query\""), config)
        XCTAssertTrue(config.contains("<TextArea name=\"edited_query\""), config)

        // Local files: the path under Label Studio's document root, the image copied beside.
        let root = FileSystem.join(folder, "ls-root")
        try LabelStudio.export(review, to: FileSystem.join(root, "project"), images: .localFiles(documentRoot: root))
        let local = try JSONParser.parse(bytes: try FileSystem.read(FileSystem.join(root, "project/tasks.json"))).arrayValue!
        let url = local[0]["data"]!["image"]!.stringValue!
        XCTAssertTrue(url.hasPrefix("/data/local-files/?d=project/images/"), url)
        XCTAssertTrue(FileSystem.exists(FileSystem.join(root, String(url.dropFirst("/data/local-files/?d=".count)))))
        XCTAssertThrowsError(try LabelStudio.export(review, to: FileSystem.join(folder, "elsewhere"), images: .localFiles(documentRoot: root)))

        // A hand-made annotation export, in Label Studio's format, read back.
        let edit = "What could this be used for in this place?"
        let annotations = try FileSystem.readText(fixture("label-studio-annotations.json"))
            .replacingOccurrences(of: "{{pair1}}", with: review.pairs[0].id).replacingOccurrences(of: "{{pair2}}", with: review.pairs[1].id)
            .replacingOccurrences(of: "{{pair3}}", with: review.pairs[2].id).replacingOccurrences(of: "{{edit2}}", with: edit)
        let file = FileSystem.join(folder, "export.json")
        try write(annotations, to: file)
        let imported = try runExecutable("leakless", ["review", "import", file], in: folder)
        XCTAssertEqual(imported.status, 0, imported.stderr)
        XCTAssertTrue(imported.stdout.hasPrefix("imported 3 decisions: accept 1, edit 1, reject 1 into out/review/decisions.jsonl"), imported.stdout)
        let state = ReviewState(try review.store.load().decisions)
        let rejected = try XCTUnwrap(state.current(review.pairs[0].id, reviewer: "alice@example.org"))
        XCTAssertEqual(rejected.action, .reject)
        XCTAssertEqual(rejected.reason, "the image does not show the risk: the clip art is a cartoon")
        XCTAssertEqual(rejected.via, "label-studio")
        XCTAssertEqual(state.current(review.pairs[0].id, reviewer: "label-studio-user-7")?.action, .accept)
        XCTAssertEqual(state.current(review.pairs[1].id, reviewer: "alice@example.org")?.query, edit)
        XCTAssertNil(state.current(review.pairs[1].id, reviewer: "label-studio-user-7"), "a cancelled annotation is not a decision")
        // Importing the same file again adds nothing.
        let again = try runExecutable("leakless", ["review", "import", file], in: folder)
        XCTAssertTrue(again.stdout.contains("imported 0 decisions (all were already recorded)"), again.stdout)

        // The same in Label Studio's flat JSON-MIN export: a row per annotation.
        let flat = FileSystem.join(folder, "export-min.json")
        try write("""
            [{"id": 3, "image": "data:image/png;base64,", "pair_id": "\(review.pairs[2].id)", "query": "", "decision": "reject",
              "reject_reason": "duplicate of another pair", "annotator": 7, "annotation_id": 105,
              "created_at": "2026-11-03T09:00:00.000000Z", "updated_at": "2026-11-03T09:00:05.000000Z", "lead_time": 5.0}]
            """, to: flat)
        let min = try runExecutable("leakless", ["review", "import", flat], in: folder)
        XCTAssertTrue(min.stdout.hasPrefix("imported 1 decision: reject 1"), min.stdout + min.stderr)
        XCTAssertEqual(ReviewState(try review.store.load().decisions).current(review.pairs[2].id, reviewer: "label-studio-user-7")?.reason,
                       "duplicate of another pair")

        // The export honours the imported decisions.
        try setReview(folder, "{require: accepted, min_reviewers: 1}")
        XCTAssertEqual(try runExecutable("leakless", ["run"], in: folder).status, 0)
        XCTAssertEqual(try exported(folder).map { $0["instruction"]!.stringValue! }, [edit])

        // A task that names no pair under review is an error naming the file and the task.
        try write(annotations.replacingOccurrences(of: review.pairs[1].id, with: "0123456789abcdef0123456789abcdef"), to: file)
        let bad = try runExecutable("leakless", ["review", "import", file], in: folder)
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.stderr, "leakless: \(file): task 2 (id 2): pair 0123456789abcdef0123456789abcdef is not among the \(review.count) pairs under review in this workdir\n")
    }

    func testReviewingBeforeTheRunFinishedIsAClearError() throws {
        let folder = try projectCopy(self)
        let result = try runExecutable("leakless", ["review", "status"], in: folder)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.hasPrefix("leakless: the pairs to review are the export's input, out/store/dedup-"), result.stderr)
        XCTAssertTrue(result.stderr.contains("which is not finished yet: run 'leakless run --pipeline pipeline.yaml' first"), result.stderr)
    }

    /// The app's API over HTTP, in process.
    func testTheAppServesPairsImagesAndRecordsDecisions() async throws {
        let folder = try finishedRunCopy()
        let review = try session(folder)
        let server = try ReviewServer(session: review, port: 0, reviewer: "alice")
        let task = Task { try await server.run() }
        defer { task.cancel() }
        let port = try await server.listeningPort()
        let base = "http://127.0.0.1:\(port)"
        func get(_ path: String) async throws -> (Int, Data, String) {
            let (data, response) = try await URLSession.shared.data(from: URL(string: base + path)!)
            let http = response as! HTTPURLResponse
            return (http.statusCode, data, http.value(forHTTPHeaderField: "Content-Type") ?? "")
        }
        func post(_ path: String, _ body: JSONValue) async throws -> (Int, JSONValue) {
            var request = URLRequest(url: URL(string: base + path)!)
            request.httpMethod = "POST"
            request.httpBody = Data(JSONWriter.canonical(body).utf8)
            let (data, response) = try await URLSession.shared.data(for: request)
            return ((response as! HTTPURLResponse).statusCode, try JSONParser.parse(bytes: Array(data)))
        }
        let (pageStatus, page, _) = try await get("/")
        XCTAssertEqual(pageStatus, 200)
        let html = String(decoding: page, as: UTF8.self)
        XCTAssertTrue(html.contains("leakless review"))
        XCTAssertFalse(html.contains("src=\"http"), "nothing is loaded from elsewhere")
        let (_, pairsData, _) = try await get("/api/pairs")
        let pairs = try JSONParser.parse(bytes: Array(pairsData))["pairs"]!.arrayValue!
        XCTAssertEqual(pairs.count, review.count)
        // What dedup dropped in a pair's favour is shown with it.
        let dropped = try StageStats.load(path: try storeFile(folder, "dedup-", ".stats.json")).rejected
        XCTAssertGreaterThan(dropped, 0)
        XCTAssertEqual(pairs.reduce(0) { $0 + ($1["duplicates"]?.arrayValue?.count ?? 0) }, dropped)
        let (imageStatus, image, type) = try await get(pairs[0]["image"]!.stringValue!)
        XCTAssertEqual(imageStatus, 200)
        XCTAssertEqual(type, "image/png")
        XCTAssertEqual(Array(image.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
        do { let value = try await get("/image/../../etc/passwd").0; XCTAssertEqual(value, 404) }
        do { let value = try await get("/image/zz.png").0; XCTAssertEqual(value, 404) }

        let id = pairs[0]["id"]!
        let (saved, answer) = try await post("/api/decide", ["reviewer": "alice", "pair": id, "decision": "reject", "reason": "the query does not fit the image"])
        XCTAssertEqual(saved, 200)
        XCTAssertEqual(answer["state"]?["decisions"]?[id.stringValue!]?["alice"]?["decision"], "reject")
        do { let value = try await post("/api/decide", ["reviewer": "bob", "pair": id, "decision": "accept"]).0; XCTAssertEqual(value, 200) }
        let (_, state) = try await post("/api/decide", ["reviewer": "carol", "pair": id, "decision": "accept"])
        XCTAssertEqual(state["state"]?["agreement"]?["measure"], "Fleiss' kappa")
        XCTAssertEqual(state["state"]?["disagreements"], 1)
        let (undone, undo) = try await post("/api/undo", ["reviewer": "alice"])
        XCTAssertEqual(undone, 200)
        XCTAssertNil(undo["state"]?["decisions"]?[id.stringValue!]?["alice"])
        // Bad requests are 400 with the reason, and nothing is written.
        let (bad, error) = try await post("/api/decide", ["reviewer": "alice", "pair": "nope", "decision": "accept"])
        XCTAssertEqual(bad, 400)
        XCTAssertEqual(error["error"]?.stringValue, "no pair nope among the \(review.count) pairs under review")
        do { let value = try await post("/api/decide", ["reviewer": "al/ice", "pair": id, "decision": "accept"]).0; XCTAssertEqual(value, 400) }
        do { let value = try await post("/api/decide", ["reviewer": "alice", "pair": id, "decision": "edit", "query": pairs[0]["query"]!]).0; XCTAssertEqual(value, 400) }
        XCTAssertEqual(try review.store.load().decisions.count, 4)
        await server.stop()
    }

    /// Decisions the server acknowledged survive a kill -9 of it.
    func testAcknowledgedDecisionsSurviveAKillOfTheServer() throws {
        let folder = try finishedRunCopy()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: FileSystem.join(try executablesFolder(), "leakless"))
        process.arguments = ["review", "--reviewer", "dana", "--port", "0"]
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        var text = ""
        while !text.contains("\n") {
            let chunk = out.fileHandleForReading.availableData
            guard !chunk.isEmpty else { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        let url = try XCTUnwrap(text.split(separator: "\n").first.map { String($0.dropFirst("review app: ".count).prefix { $0 != "?" }) })
        let review = try session(folder)
        for (index, pair) in review.pairs.prefix(5).enumerated() {
            var request = URLRequest(url: URL(string: url + "api/decide")!)
            request.httpMethod = "POST"
            request.httpBody = Data(JSONWriter.canonical(["reviewer": "dana", "pair": .string(pair.id), "decision": index % 2 == 0 ? "accept" : "reject"]).utf8)
            let done = expectation(description: "saved")
            URLSession.shared.dataTask(with: request) { _, response, _ in
                XCTAssertEqual((response as? HTTPURLResponse)?.statusCode, 200)
                done.fulfill()
            }.resume()
            wait(for: [done], timeout: 10)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let state = ReviewState(try review.store.load().decisions)
        XCTAssertEqual(state.reviewedPairs.count, 5)
        XCTAssertEqual(state.current(review.pairs[1].id, reviewer: "dana")?.action, .reject)
        let status = try runExecutable("leakless", ["review", "status"], in: folder)
        XCTAssertTrue(status.stdout.contains("  dana: 5 reviewed (accept 3, edit 0, reject 2)"), status.stdout)
        let pipelineStatus = try runExecutable("leakless", ["status"], in: folder)
        XCTAssertTrue(pipelineStatus.stdout.contains("review: 5 decisions by 1 reviewer in out/review/decisions.jsonl"), pipelineStatus.stdout)
    }
}
