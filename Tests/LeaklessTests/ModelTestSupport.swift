import Foundation
import XCTest

@testable import Leakless
@testable import LeaklessCore
@testable import LeaklessMockServer
@testable import LeaklessModels
@testable import LeaklessNetwork

/// A backend of `kind` with every default filled in, as pipeline.yaml would give it.
func testBackend(_ kind: BackendKind, name: String = "test", baseURL: String, _ overrides: [String: JSONValue] = [:]) -> BackendConfig {
    var settings: [String: JSONValue] = [:]
    for setting in kind.settings { settings[setting.name] = setting.defaultValue ?? .string("mock") }
    settings["base_url"] = .string(baseURL)
    settings["retry_base_seconds"] = .double(0.05)
    for (key, value) in overrides { settings[key] = value }
    return BackendConfig(name: name, kind: kind.name, settings: settings)
}

/// A server whose answers come from `script`, called with the request and how many requests
/// with the same marker (the first `[[...]]` in the last user message) came before it.
func scriptedServer(_ test: XCTestCase, _ script: @escaping @Sendable (MockRequest, String, Int) -> MockAction) throws -> MockServer {
    final class Counts: @unchecked Sendable {
        let lock = NSLock()
        var seen: [String: Int] = [:]
        func next(_ marker: String) -> Int {
            lock.lock()
            defer { lock.unlock() }
            seen[marker, default: 0] += 1
            return seen[marker]! - 1
        }
    }
    let counts = Counts()
    let server = try MockServer { request in
        let text = request.bodyText
        var marker = ""
        if let open = text.range(of: "[["), let close = text[open.upperBound...].range(of: "]]") {
            marker = String(text[open.upperBound..<close.lowerBound])
        }
        return script(request, marker, counts.next(marker))
    }
    test.addTeardownBlock { server.stop() }
    return server
}

func chatAnswer(_ text: String, refusal: String? = nil, finishReason: String = "stop", delay: Double = 0) -> MockAction {
    .json(MockModel.chatReply(text, prompt: [.string("prompt")], finishReason: finishReason, refusal: refusal), delay: delay)
}

/// A prompt with one slot and a reply schema, in its own folder.
func testTemplate(_ test: XCTestCase) throws -> PromptTemplate {
    let folder = try temporaryFolder(test)
    try write("[system]\nYou answer in JSON.\n[user]\n{{task}}\n[reply]\n" + #"{"type":"object","required":["answer"],"properties":{"answer":{"type":"string","minLength":1}}}"#,
              to: FileSystem.join(folder, "probe.prompt"))
    return try PromptTemplate.load(folder: folder, name: "probe")
}

/// Every file under `folder` whose bytes contain `needle`.
func files(under folder: String, containing needle: String) throws -> [String] {
    let bytes = Array(needle.utf8)
    var found: [String] = []
    guard let walker = FileManager.default.enumerator(atPath: folder) else { return [] }
    for case let relative as String in walker {
        let path = FileSystem.join(folder, relative)
        guard !FileSystem.isDirectory(path), let data = FileManager.default.contents(atPath: path) else { continue }
        if Data(data).range(of: Data(bytes)) != nil { found.append(path) }
    }
    return found
}
