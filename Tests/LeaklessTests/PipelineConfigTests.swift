import XCTest

@testable import Leakless
@testable import LeaklessCore

final class PipelineConfigTests: XCTestCase {
    func load(_ text: String) throws -> PipelineConfig {
        try PipelineConfig(document: try YAMLDocument.parse(text, path: "p.yaml"), path: "p.yaml", definitions: StageRegistry.definitions)
    }

    func assertError(_ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try load(text), file: file, line: line) { error in
            XCTAssertEqual("\(error)", expected, file: file, line: line)
        }
    }

    let header = "backends:\n  builtin:\n    kind: builtin\nstages:\n"

    func testDefaultsFillInAndBackendIsResolved() throws {
        let config = try load(header + "  extract:\n    seed: 7\n  rewrite:\n")
        XCTAssertEqual(config.stages.map(\.name), ["extract", "rewrite"])
        XCTAssertEqual(config.stages[0].parameters["seed"], 7)
        XCTAssertEqual(config.stages[0].parameters["queries_per_element"], 3)
        XCTAssertEqual(config.stages[0].backend?.kind, "builtin")
        XCTAssertEqual(config.workdir, "out")
    }

    func testErrorsNameTheLineAndWhatWasExpected() {
        assertError(header + "  extract:\n    sead: 7\n",
                    "p.yaml:6: unknown key 'sead' in stage 'extract' (expected one of: taxonomy, path, collections, licenses, queries_per_element, seed, categories, lexicon, model, matching, min_similarity, min_tfidf, backend, executor)")
        assertError(header + "  extract:\n    seed: seven\n", "p.yaml:6: 'seed' must be an integer from \(Int64.min) to \(Int64.max), found 'seven'")
        assertError(header + "  extract:\n  translate:\n",
                    "p.yaml:6: unknown stage 'translate' (expected one of: \(StageRegistry.definitions.map(\.name).joined(separator: ", ")))")
        assertError(header + "  extract:\n    backend: gpt\n", "p.yaml:6: 'backend' must name a backend declared under 'backends' (builtin)")
        assertError(header + "  rewrite:\n", "p.yaml:5: stage 'rewrite' cannot come first: it reads another stage's records")
        assertError(header + "  extract:\n  filter:\n", "p.yaml:6: stage 'filter' reads 'pair' records, but 'extract' before it writes 'seed' records")
        assertError("stage:\n  extract:\n", "p.yaml:1: unknown key 'stage' in the pipeline (expected one of: workdir, backends, budget, executor, stages)")
        assertError("backends:\n  m:\n    kind: openai\nstages:\n  extract:\n", "p.yaml:3: backend kind must be one of: builtin, openai-chat, openai-images, sd-webui, llamaguard, openai-moderation, typography")
        assertError(header + "  dedup: [1, 2]\n", "p.yaml:5: stage 'dedup' must be a mapping, found list")
        assertError("stages: {extract: {seed: 1}\n", "p.yaml:2: invalid YAML: did not find expected ',' or '}'")
    }

    func testBaseURLTakesEnvironmentVariables() throws {
        func backend(_ url: String, _ environment: [String: String]) throws -> String {
            let text = "backends:\n  m:\n    kind: openai-chat\n    model: x\n    base_url: \(url)\nstages:\n  extract:\n    backend: m\n"
            let config = try PipelineConfig(document: try YAMLDocument.parse(text, path: "p.yaml"), path: "p.yaml",
                                            definitions: StageRegistry.definitions, environment: environment)
            return config.backends["m"]!.string("base_url")
        }
        XCTAssertEqual(try backend("${PORT_URL:-http://127.0.0.1:8080/v1}", [:]), "http://127.0.0.1:8080/v1")
        XCTAssertEqual(try backend("${PORT_URL:-http://127.0.0.1:8080/v1}", ["PORT_URL": ""]), "http://127.0.0.1:8080/v1")
        XCTAssertEqual(try backend("${PORT_URL:-http://127.0.0.1:8080/v1}", ["PORT_URL": "http://10.0.0.2:9/v1"]), "http://10.0.0.2:9/v1")
        XCTAssertEqual(try backend("http://${HOST}:${PORT}/v1", ["HOST": "gpu-box", "PORT": "8000"]), "http://gpu-box:8000/v1")
        XCTAssertEqual(try backend("http://a/b", ["HOST": "x"]), "http://a/b")
        func failure(_ url: String) -> String {
            do {
                return try backend(url, [:])
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(failure("http://${HOST}/v1"), "p.yaml:5: 'base_url': the environment variable HOST is not set (write ${HOST:-DEFAULT} for a default)")
        XCTAssertEqual(failure("http://${HOST/v1"), "p.yaml:5: 'base_url': '${' without its closing '}' in 'http://${HOST/v1'")
        XCTAssertEqual(failure("${A B:-x}"), "p.yaml:5: 'base_url': '${A B:-x}' does not name an environment variable (letters, digits, _)")
        XCTAssertEqual(failure("${EMPTY:-}"), "p.yaml:5: 'base_url' must start with http:// or https://, found ''")
    }

    func testExtractCategoriesNameCategoriesOrSubCategories() throws {
        let path = FileSystem.join(projectRoot, "data/taxonomy.yaml")
        let taxonomy = try Taxonomy.load(path: path)
        let one = taxonomy.elementRecords(categories: ["Violent / Weapon-Related Violence"])
        XCTAssertEqual(Set(one.map { $0.record.string("sub_category") }), ["Weapon-Related Violence"])
        XCTAssertGreaterThan(taxonomy.elementRecords(categories: ["Violent"]).count, one.count)
        XCTAssertEqual(taxonomy.unknownSelections(["Violent", "Violent / Weapon-Related Violence", "Violence", "Violent / Guns"]),
                       ["Violence", "Violent / Guns"])
        let parameters = try ExtractStage.parameters(["categories": ["Violent", "Violent / Guns"]])
        XCTAssertThrowsError(try ExtractStage.source(parameters, input: path)) { error in
            XCTAssertTrue("\(error)".hasSuffix("data/taxonomy.yaml: extract's categories name 'Violent / Guns', which the taxonomy does not have (a category's name, or 'Category / Sub-category')"), "\(error)")
        }
    }
}

final class StageKeyTests: XCTestCase {
    func key(_ folder: String, stage: String = "detect", input: String? = "query-abc.jsonl") throws -> String {
        let config = try PipelineConfig.load(path: FileSystem.join(folder, "pipeline.yaml"), definitions: StageRegistry.definitions)
        return try StageKey(stage: config.stage(named: stage)!, pipeline: config,
                            templates: FileSystem.join(folder, "stages", stage), inputName: input).hash.hex
    }

    func testWhatChangesAKeyAndWhatDoesNot() throws {
        let folder = try projectCopy(self)
        let pipeline = FileSystem.join(folder, "pipeline.yaml")
        let original = try key(folder)

        // Not: the input name is the same, an explicit default, the project's location.
        XCTAssertEqual(try key(folder), original)
        let text = try FileSystem.readText(pipeline)
        try write(text.replacingOccurrences(of: "    min_content_words: 2\n", with: "    min_content_words: 2\n    element_terms: true\n"), to: pipeline)
        XCTAssertEqual(try key(folder), original, "a parameter set to its default")
        let moved = try projectCopy(self)
        XCTAssertEqual(try key(moved), original, "the same project elsewhere")

        // Yes: a parameter, a data file's bytes, a template's bytes, the input.
        try write(text.replacingOccurrences(of: "min_content_words: 2", with: "min_content_words: 3"), to: pipeline)
        XCTAssertNotEqual(try key(folder), original)
        try write(text, to: pipeline)
        XCTAssertEqual(try key(folder), original)

        let lexicon = FileSystem.join(folder, "data/lexicon.yaml")
        try write(try FileSystem.readText(lexicon) + "\n# edited\n", to: lexicon)
        XCTAssertNotEqual(try key(folder), original, "the lexicon's bytes")
        XCTAssertNotEqual(try key(moved, input: "query-def.jsonl"), original, "the input")
        try write("{}", to: FileSystem.join(moved, "stages/detect/extra.txt"))
        XCTAssertNotEqual(try key(moved), original, "a file in the stage's template folder")
        XCTAssertEqual(try key(moved, stage: "rewrite"), try key(folder, stage: "rewrite"), "other stages keep their keys")
    }
}
