import Foundation
import XCTest

@testable import Leakless
@testable import LeaklessCore

final class ValidatorTests: XCTestCase {
    func entry(_ id: Int, image: String, drop: String? = nil) -> String {
        var fields: [String: JSONValue] = [
            "instruction_id": .int(Int64(id)), "instruction": "What is this?", "image_path": .string(image), "category": "Violent",
            "sub_category": "Weapon-Related Violence", "source": "generation", "image_description": "A knife.", "safety_reason": "Risky.",
        ]
        if let drop { fields.removeValue(forKey: drop) }
        return JSONWriter.pretty(.object(fields))
    }

    /// Every problem, with the entry and its instruction_id, not only the first; a data.json
    /// path is taken as its folder; a syntax error says line and column.
    func testValidateReportsEveryProblemWithItsEntry() throws {
        let folder = try temporaryFolder(self)
        try FileSystem.createDirectory(FileSystem.join(folder, "imgs"))
        try FileManager.default.copyItem(atPath: fixture("small.png"), toPath: FileSystem.join(folder, "imgs/0.png"))
        try write("[" + [entry(0, image: "imgs/0.png"), entry(0, image: "imgs/0.png"), entry(2, image: "imgs/9.png"),
                         entry(3, image: "imgs/0.png", drop: "category")].joined(separator: ",\n") + "]\n",
                  to: FileSystem.join(folder, "data.json"))
        let result = try runExecutable("leakless", ["validate", FileSystem.join(folder, "data.json")], in: folder)
        XCTAssertEqual(result.status, 1)
        let data = FileSystem.join(folder, "data.json")
        XCTAssertEqual(result.stderr, """
            \(data): record 2 (instruction_id 0): duplicate instruction_id 0
            \(data): record 3 (instruction_id 2): image_path 'imgs/9.png' does not exist
            \(data): record 4 (instruction_id 3): missing field 'category'
            3 problem(s)

            """)
        try write("[\n  {\n    \"instruction_id\": 0,\n    \"instruction\": oops\n  }\n]\n", to: data)
        let broken = try runExecutable("leakless", ["validate", folder], in: folder)
        XCTAssertTrue(broken.stderr.hasPrefix("leakless: \(data):4: column 20: invalid JSON"), broken.stderr)
    }
}
