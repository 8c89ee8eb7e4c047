import Foundation
import XCTest

@testable import Leakless
@testable import LeaklessCore
@testable import LeaklessMockServer
@testable import LeaklessModels
@testable import LeaklessNetwork

/// What llama.cpp's server does that a hosted endpoint does not, as the test server reproduces
/// it: images refused with a 500 when the model has no vision projector, a 400 for a prompt
/// longer than the context window, replies cut at max_tokens, no `refusal` field.
final class LocalServerBehaviourTests: XCTestCase {
    func client(_ server: MockServer, _ overrides: [String: JSONValue] = [:]) throws -> (ChatClient, ModelSession) {
        let backend = testBackend(.openAIChat, name: "local", baseURL: server.baseURL + "/v1", overrides)
        let session = try ModelSession(backends: [backend], cache: try temporaryFolder(self), budget: Budget())
        return (session.chat(backend), session)
    }

    func testAnImageToATextModelFailsAtOnceSayingSo() throws {
        let server = try MockServer(handler: MockModel(vision: false).handle)
        addTeardownBlock { server.stop() }
        let (chat, session) = try client(server)
        let png = try FileSystem.read(fixture("small.png"))
        let message = ChatMessage(role: "user", text: "what is this", images: [ImageAttachment(bytes: png, mimeType: "image/png")])
        XCTAssertThrowsError(try chat.complete([message], http: session.http(0))) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("answered 500: image input is not supported"), text)
            XCTAssertTrue(text.contains("backend 'local'") && text.contains("takes no images") && text.contains("vision: false"), text)
        }
        XCTAssertEqual(server.requests.count, 1, "a server that takes no images is not asked again")
        // Text alone is answered.
        XCTAssertFalse(try chat.complete([ChatMessage(role: "user", text: "hello")], http: session.http(0)).text.isEmpty)
    }

    func testAPromptLongerThanTheContextIsThatItemsRejectAndATruncatedReplyIsNamed() throws {
        let server = try MockServer(handler: MockModel(contextTokens: 120).handle)
        addTeardownBlock { server.stop() }
        let folder = try temporaryFolder(self)
        try write("[user]\n{{task}}\n", to: FileSystem.join(folder, "probe.prompt"))
        try write(#"{"type":"object","required":["answer"],"properties":{"answer":{"type":"string","maxLength":5}}}"#,
                  to: FileSystem.join(folder, "probe.reply.json"))
        let template = try PromptTemplate.load(folder: folder, name: "probe")
        let context = StageContext(templates: folder, blobs: FileSystem.join(folder, "blobs"),
                                   backends: ["backend": testBackend(.openAIChat, name: "local", baseURL: server.baseURL + "/v1", ["max_tokens": 4, "max_reasks": 1])],
                                   cache: FileSystem.join(folder, "cache"))
        let calls = try ModelCalls(context, roles: ["backend"])
        let prompt = Prompt(calls: calls, client: try calls.chat("backend"), template: template)

        // Too long for the context: a `too-long` reject of that item, not a stopped stage.
        guard case .failure(let long) = try prompt.ask(["task": String(repeating: "word ", count: 200)], worker: 0) else {
            return XCTFail("a prompt over the context was answered")
        }
        XCTAssertEqual(long.reason, "too-long")
        XCTAssertTrue(long.detail.contains("exceeds the available context size (120 tokens)"), long.detail)

        // The reply is cut at max_tokens (finish_reason length), asked again once, then rejected as truncated.
        let before = server.requests.count
        guard case .failure(let cut) = try prompt.ask(["task": "Tell me a long story."], worker: 0) else {
            return XCTFail("a cut-off reply was taken")
        }
        XCTAssertEqual(cut.reason, "truncated")
        XCTAssertTrue(cut.detail.contains("cut off at max_tokens"), cut.detail)
        XCTAssertEqual(server.requests.count - before, 2)
        let reply = try JSONParser.parse(bytes: Array(server.requests.last!.bodyText.utf8))
        XCTAssertEqual(reply["max_tokens"], 4)
    }

    func testTheTestServerRepliesAsLlamaCppDoes() throws {
        let server = try MockServer(handler: MockModel().handle)
        addTeardownBlock { server.stop() }
        let (chat, session) = try client(server, ["max_tokens": 2])
        let reply = try chat.complete([ChatMessage(role: "user", text: "Tell me a long story.")], http: session.http(0))
        XCTAssertEqual(reply.finishReason, "length")
        XCTAssertEqual(reply.completionTokens, 2)
        XCTAssertNil(reply.refusal)
        // No refusal field at all in the message, as llama.cpp writes it.
        let body = MockModel.chatReply("hi", prompt: [])
        XCTAssertNil(body["choices"]?.arrayValue?.first?["message"]?["refusal"])
    }

    func testSchemaBoundsAreChecked() {
        let schema = RecordSchema(["type": "object", "properties": [
            "queries": ["type": "array", "maxItems": 2, "items": ["type": "string", "maxLength": 5]],
        ]])
        XCTAssertNil(schema.violation(in: ["queries": ["a", "bb"]]))
        XCTAssertEqual(schema.violation(in: ["queries": ["a", "b", "c"]]), "at $.queries: more than 2 items")
        XCTAssertEqual(schema.violation(in: ["queries": ["abcdef"]]), "at $.queries[0]: longer than 5 characters")
    }

    /// The categoriser's reply schema lists the taxonomy's names, so a server that decodes to the
    /// schema cannot name a category that is not there.
    func testTheCategoriserSchemaEnumeratesTheTaxonomy() throws {
        let template = try testTemplate(self)
        let narrowed = try template.narrowing(["answer": ["enum": ["a", "b"]]])
        XCTAssertEqual(narrowed.replySchema?["properties"]?["answer"], ["type": "string", "minLength": 1, "enum": ["a", "b"]])
        XCTAssertNotEqual(narrowed.hash, template.hash)
        XCTAssertEqual(try template.narrowing([:]).hash, template.hash)
        XCTAssertNotNil(RecordSchema(narrowed.replySchema!).violation(in: ["answer": "c"]))

        let taxonomy = try Taxonomy.load(path: FileSystem.join(projectRoot, "data/taxonomy.yaml"))
        let context = StageContext(templates: FileSystem.join(projectRoot, "stages/categorise"), blobs: try temporaryFolder(self),
                                   backends: ["backend": testBackend(.openAIChat, baseURL: "http://127.0.0.1:9/v1")], cache: try temporaryFolder(self))
        let step = try ModelCategorise(try ModelCalls(context, roles: ["backend"]), taxonomy: taxonomy)
        let properties = step.prompt.template.replySchema?["properties"]
        XCTAssertEqual(properties?["category"]?["enum"]?.stringArray, taxonomy.categories.map(\.name))
        XCTAssertTrue(properties?["sub_category"]?["enum"]?.stringArray?.contains("Weapon-Related Violence") == true)
    }

    /// A text model (vision: false) as eval's target: the instructions go without their images,
    /// the report says so, and --image-blind gives a note instead of a visual dependence of 0.
    func testEvalOfATextModelSaysItSawNoImages() throws {
        let server = try MockServer(handler: MockModel(vision: false).handle)
        addTeardownBlock { server.stop() }
        let folder = try projectCopy(self)
        try write("""
            backends:
              text: {kind: openai-chat, base_url: \(server.baseURL)/v1, model: text, vision: false}
              claims: {kind: openai-chat, base_url: \(server.baseURL)/v1, model: text}
              judge: {kind: openai-chat, base_url: \(server.baseURL)/v1, model: judge, vision: false}
            stages:
              extract: {backend: text}
            """, to: FileSystem.join(folder, "eval.yaml"))
        let benchmark = try evalBenchmark(self)
        let result = try runExecutable("leakless", ["eval", "--pipeline", "eval.yaml", "--benchmark", benchmark, "--target", "text",
                                                    "--judge", "judge", "--image-blind"], in: folder)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("text: 5 pairs labelled"), result.stdout)
        XCTAssertTrue(result.stdout.contains("note: text has vision: false: each instruction went without its image"), result.stdout)
        XCTAssertFalse(result.stdout.contains("visual dependence"), result.stdout)
        let figures = try JSONParser.parse(bytes: FileSystem.read(FileSystem.join(folder, "out/eval/eval.json")))
        let model = figures["models"]?.arrayValue?.first
        XCTAssertEqual(model?["sees_images"], false)
        XCTAssertNil(model?["without_image"])
        let markdown = try FileSystem.readText(FileSystem.join(folder, "out/eval/eval.md"))
        XCTAssertTrue(markdown.contains("| text (text), text only | 5 |"), markdown)
        XCTAssertFalse(markdown.contains("Visual dependence"), markdown)
        assertTablesWellFormed(markdown)

        // The same model declared as seeing images: one clear error, not five retried 500s.
        let before = server.requests.count
        let claims = try runExecutable("leakless", ["eval", "--pipeline", "eval.yaml", "--benchmark", benchmark, "--target", "claims",
                                                    "--judge", "judge", "--output", "out/eval-claims"], in: folder)
        XCTAssertNotEqual(claims.status, 0)
        XCTAssertTrue(claims.stderr.contains("takes no images: declare a text model with vision: false"), claims.stderr)
        XCTAssertLessThanOrEqual(server.requests.count - before, 5, "no retries of a request the server cannot serve")
        XCTAssertFalse(FileSystem.exists(FileSystem.join(folder, "out/eval-claims/eval.json")))
    }
}
