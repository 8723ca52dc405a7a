import Foundation
import Testing
@testable import MyelinCore

/// When Myelin pins PoCL's worker threads (`OpenCLPlatforms.pinsPoCLThreads`): only where the environment leaves
/// `POCL_AFFINITY` unset, the process may run on every CPU, and PoCL's thread count fits the CPUs.
@Suite struct PoCLAffinityTests {
    @Test func pinsOnlyWhereEveryCPUIsAllowedAndTheUserSetNothing() {
        #expect(OpenCLPlatforms.pinsPoCLThreads(environment: [:], activeProcessors: 2, processors: 2))
        #expect(OpenCLPlatforms.pinsPoCLThreads(environment: ["POCL_MAX_PTHREAD_COUNT": "2"], activeProcessors: 8,
                                                processors: 8))
        // The user's own setting, either way, is kept.
        #expect(!OpenCLPlatforms.pinsPoCLThreads(environment: ["POCL_AFFINITY": "0"], activeProcessors: 2, processors: 2))
        #expect(!OpenCLPlatforms.pinsPoCLThreads(environment: ["POCL_AFFINITY": "1"], activeProcessors: 2, processors: 2))
        // A CPU set or quota (taskset, a container): PoCL would pin thread i to CPU i, which may be outside it.
        #expect(!OpenCLPlatforms.pinsPoCLThreads(environment: [:], activeProcessors: 2, processors: 4))
        // More threads than CPUs, or a count PoCL would not read as one.
        #expect(!OpenCLPlatforms.pinsPoCLThreads(environment: ["POCL_MAX_PTHREAD_COUNT": "16"], activeProcessors: 4,
                                                 processors: 4))
        #expect(!OpenCLPlatforms.pinsPoCLThreads(environment: ["POCL_MAX_PTHREAD_COUNT": "x"], activeProcessors: 4,
                                                 processors: 4))
        // One CPU: nothing to share.
        #expect(!OpenCLPlatforms.pinsPoCLThreads(environment: [:], activeProcessors: 1, processors: 1))
    }

    /// After the first enumeration `POCL_AFFINITY` is set wherever `pinsPoCLThreads` allows it.
    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
    func theFirstEnumerationSetsItWhereAllowed() {
        _ = OpenCLPlatforms.devices()
        let info = ProcessInfo.processInfo
        if info.environment["POCL_AFFINITY"] == nil {
            #expect(!OpenCLPlatforms.pinsPoCLThreads(environment: info.environment,
                                                     activeProcessors: info.activeProcessorCount,
                                                     processors: info.processorCount))
        }
    }
}
