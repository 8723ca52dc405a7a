import Foundation
import Testing
@testable import MyelinCore

/// When PoCL cannot create its kernel cache folder it shows no device; Myelin names the folder and what to set
/// instead of only "no OpenCL device found".
@Suite struct NoDeviceReasonTests {
    /// An OpenCL vendor folder listing PoCL, and a regular file to put an impossible home under.
    static func setting() throws -> (vendors: URL, file: URL) {
        let dir = temporaryFolder()
        let vendors = dir.appendingPathComponent("vendors")
        try FileManager.default.createDirectory(at: vendors, withIntermediateDirectories: true)
        try Data("libpocl.so.2\n".utf8).write(to: vendors.appendingPathComponent("pocl.icd"))
        let file = dir.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        return (vendors, file)
    }

    @Test func anUncreatableCacheFolderIsNamedWithTheFix() throws {
        let (vendors, file) = try Self.setting()
        defer { try? FileManager.default.removeItem(at: vendors.deletingLastPathComponent()) }
        let home = file.path + "/home"
        let reason = try #require(OpenCLPlatforms.noDeviceReason(environment: ["OCL_ICD_VENDORS": vendors.path, "HOME": home]))
        #expect(reason.contains("PoCL") && reason.contains(home + "/.cache/pocl/kcache") && reason.contains("HOME=\(home)")
                && reason.contains("POCL_CACHE_DIR") && reason.contains("\(file.path) is not a folder"), "\(reason)")
        // XDG_CACHE_HOME comes before HOME, POCL_CACHE_DIR before both.
        let xdg = OpenCLPlatforms.noDeviceReason(environment: ["OCL_ICD_VENDORS": vendors.path, "HOME": "/tmp", "XDG_CACHE_HOME": home])
        #expect(xdg?.contains(home + "/pocl/kcache") == true && xdg?.contains("XDG_CACHE_HOME") == true, "\(xdg ?? "nil")")
        let cache = vendors.deletingLastPathComponent().appendingPathComponent("cache/kcache").path
        #expect(OpenCLPlatforms.noDeviceReason(environment: ["OCL_ICD_VENDORS": vendors.path, "HOME": home, "POCL_CACHE_DIR": cache]) == nil)
        // Without PoCL there is nothing to say.
        let empty = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(OpenCLPlatforms.noDeviceReason(environment: ["OCL_ICD_VENDORS": empty.path, "HOME": home]) == nil)
    }

    @Test func theDeviceErrorCarriesTheReason() {
        let error = DeviceError.noOpenCLBecause("PoCL, the OpenCL driver here, cannot create ...", available: ["cpu"])
        #expect("\(error)" == "no OpenCL device found: PoCL, the OpenCL driver here, cannot create ...; available devices: cpu")
    }
}
