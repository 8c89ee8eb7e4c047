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
        try write("[user]\n{{task}}\n\n[reply]\n" + #"{"type":"object","required":["answer"],"properties":{"answer":{"type":"string","maxLength":5}}}"#,
                  to: FileSystem.join(folder, "probe.prompt"))
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

    /// A new model stage's prompt, with no answers of its own in the stand-in, is answered with
    /// a value made from its reply schema: the same for the same prompt.
    func testAPromptTheStandInDoesNotKnowIsAnsweredFromItsReplySchema() throws {
        let server = try MockServer(handler: MockModel().handle)
        addTeardownBlock { server.stop() }
        let folder = try temporaryFolder(self)
        let schema: JSONValue = ["type": "object", "required": ["verdict", "score", "tags", "why"], "properties": [
            "verdict": ["enum": ["keep", "drop"]], "score": ["type": "number", "minimum": 0.25, "maximum": 0.75],
            "count": ["type": "integer", "minimum": 2, "maximum": 4], "sure": ["type": "boolean"],
            "tags": ["type": "array", "minItems": 2, "maxItems": 5, "items": ["type": "string", "minLength": 3, "maxLength": 12]],
            "why": ["type": "string", "maxLength": 8],
        ]]
        try write("[user]\nJudge: {{task}}\n\n[reply]\n" + JSONWriter.canonical(schema) + "\n", to: FileSystem.join(folder, "novel.prompt"))
        let template = try PromptTemplate.load(folder: folder, name: "novel")
        let context = StageContext(templates: folder, blobs: FileSystem.join(folder, "blobs"),
                                   backends: ["backend": testBackend(.openAIChat, name: "local", baseURL: server.baseURL + "/v1")],
                                   cache: FileSystem.join(folder, "cache"))
        let calls = try ModelCalls(context, roles: ["backend"])
        let prompt = Prompt(calls: calls, client: try calls.chat("backend"), template: template)
        guard case .success(let (first, _)) = try prompt.ask(["task": "a red apple"], worker: 0) else {
            return XCTFail("the stand-in's reply did not meet the schema")
        }
        XCTAssertNil(RecordSchema(schema).violation(in: first))
        XCTAssertEqual(first["tags"]?.arrayValue?.count, 2)
        XCTAssertNotNil(first["sure"]?.boolValue)
        XCTAssertEqual(SchemaReply.value(meeting: schema, prompt: "Judge: a red apple"), SchemaReply.value(meeting: schema, prompt: "Judge: a red apple"))
        let values = (0..<40).map { SchemaReply.value(meeting: schema, prompt: "Judge: \($0)") }
        XCTAssertEqual(Set(values.compactMap { $0["verdict"]?.stringValue }), ["keep", "drop"])
        XCTAssertTrue(values.allSatisfy { RecordSchema(schema).violation(in: $0) == nil })
    }

    /// The reply schema is the prompt's last section; the file of the former layout is named.
    func testAReplySchemaIsThePromptsLastSection() throws {
        let folder = try temporaryFolder(self)
        let schema = #"{"type":"object","properties":{"answer":{"type":"string"}}}"#
        let plain = try PromptTemplate(path: "p.prompt", text: "[user]\nQ: {{task}}\n\n[reply]\n\(schema)\n")
        XCTAssertEqual(plain.replySchema?["properties"]?["answer"], ["type": "string"])
        XCTAssertEqual(plain.sections.map(\.role), ["user"])
        XCTAssertEqual(plain.sections.last?.text, "Q: {{task}}")
        // The hash covers the prompt's text and its schema, not the blank lines between them.
        XCTAssertEqual(try PromptTemplate(path: "p.prompt", text: "[user]\nQ: {{task}}\n[reply]\n\(schema)").hash, plain.hash)
        XCTAssertNotEqual(try PromptTemplate(path: "p.prompt", text: "[user]\nQ: {{task}}\n").hash, plain.hash)
        for (text, expected) in [
            ("[user]\nQ\n[reply]\n\(schema)\n[user]\nmore\n", "p.prompt:5: [reply] must be the last section"),
            ("[user]\nQ\n[reply]\n{\"type\": \n", "p.prompt:3: [reply]: not a JSON schema"),
            ("[user]\nQ\n[reply]\n[1, 2]\n", "p.prompt:3: [reply]: the reply schema must be a JSON object"),
        ] {
            XCTAssertThrowsError(try PromptTemplate(path: "p.prompt", text: text)) { error in
                XCTAssertTrue("\(error)".hasPrefix(expected), "\(error)")
            }
        }
        try write("[user]\nQ\n", to: FileSystem.join(folder, "old.prompt"))
        try write(schema, to: FileSystem.join(folder, "old.reply.json"))
        XCTAssertThrowsError(try PromptTemplate.load(folder: folder, name: "old")) { error in
            XCTAssertTrue("\(error)".contains("old.reply.json: a reply schema goes in its prompt's last section"), "\(error)")
        }
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
