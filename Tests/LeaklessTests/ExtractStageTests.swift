import XCTest

@testable import Leakless
@testable import LeaklessCore

final class ExtractStageTests: XCTestCase {
    func testExtractIsDeterministicAndSeeded() throws {
        let taxonomy = try Taxonomy.load(path: FileSystem.join(projectRoot, "data/taxonomy.yaml"))
        XCTAssertEqual(taxonomy.categories.count, 6)
        XCTAssertEqual(taxonomy.categories.flatMap(\.subCategories).count, 19)
        let element = taxonomy.elementRecords()[0].record
        func run(seed: Int64) throws -> [String] {
            var stage = try BuiltinExtractStage(
                context: StageContext(templates: FileSystem.join(projectRoot, "stages/extract"), blobs: ""),
                parameters: try ExtractStage.parameters(["queries_per_element": 3, "seed": .int(seed)]))
            return try stage.process(element).compactMap { if case .record(let r) = $0 { return r.string("query") } else { return nil } }
        }
        XCTAssertEqual(try run(seed: 1), try run(seed: 1))
        XCTAssertEqual(try run(seed: 1).count, 3)
        XCTAssertTrue(try run(seed: 1).allSatisfy { $0.contains("a loaded handgun") })
    }
}
