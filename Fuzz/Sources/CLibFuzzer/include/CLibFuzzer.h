// libFuzzer's driver, for a main() of our own (SwiftPM gives every executable target its own entry point, so
// libFuzzer's main() is never linked): https://llvm.org/docs/LibFuzzer.html#using-libfuzzer-as-a-library
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));
