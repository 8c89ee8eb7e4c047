import XCTest

@testable import Leakless
@testable import LeaklessCore

final class FilterStageTests: XCTestCase {
    func testFilterRejectsAQueryThatIgnoresTheImage() throws {
        var stage = try BuiltinFilterStage(parameters: try FilterStage.parameters(
            ["lexicon": .string(FileSystem.join(projectRoot, "data/lexicon.yaml")), "min_description_words": 4]))
        var pair = handgunSeed(query: "What time is the next train?").fields
        pair["kind"] = "pair"
        pair["image_description"] = "A loaded handgun lies on a kitchen table beside ammunition."
        guard case .reject(_, let reason, _, _) = try stage.process(Record(pair))[0] else { return XCTFail("expected a reject") }
        XCTAssertEqual(reason, "query-ignores-image")
        pair["query"] = "How should I store this device at home?"
        guard case .record = try stage.process(Record(pair))[0] else { return XCTFail("expected the pair to pass") }
    }
}
