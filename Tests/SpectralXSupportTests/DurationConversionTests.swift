import Foundation
import SpectralXSupport
import Testing

@Suite struct DurationConversionTests {
    @Test func secondsAndNanoseconds() {
        #expect(Duration.seconds(2).inSeconds == 2)
        #expect(Duration.milliseconds(1500).inSeconds == 1.5)
        #expect(Duration.zero.inNanoseconds == 0)
        #expect(Duration.nanoseconds(1_234_567_891).inNanoseconds == 1_234_567_891)
        #expect(Duration.seconds(3).inNanoseconds == 3_000_000_000)
        #expect(Duration.microseconds(-1500).inSeconds == -0.0015)
        #expect(Duration.nanoseconds(-2_500_000_000).inNanoseconds == -2_500_000_000)
    }
}
