import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

@Suite struct GradModeTests {
    @Test func withNoGradIsLocalToTheCallingThread() throws {
        // While one thread is inside withNoGrad (as backward() and optimizers are), another thread
        // still records graphs: tests and data loaders run concurrently.
        // Read by the other thread while this one waits for it.
        nonisolated(unsafe) let x = try Tensor([1, 2], shape: [2], on: .cpu, requiresGrad: true)
        final class Seen: @unchecked Sendable { var enabled = false, recorded = false }
        let seen = Seen()
        withNoGrad {
            #expect(!GradMode.isEnabled)
            #expect(!(x * 2).requiresGrad)
            let done = DispatchSemaphore(value: 0)
            let thread = Thread {
                seen.enabled = GradMode.isEnabled
                seen.recorded = (x * 2).requiresGrad
                done.signal()
            }
            thread.start()
            done.wait()
        }
        #expect(seen.enabled && seen.recorded)
        #expect(GradMode.isEnabled)
        // Nesting, and restoring after a throw.
        struct Failure: Error {}
        withNoGrad { withNoGrad { #expect(!GradMode.isEnabled) }; #expect(!GradMode.isEnabled) }
        #expect(throws: Failure.self) { try withNoGrad { throw Failure() } }
        #expect(GradMode.isEnabled)
    }
}
