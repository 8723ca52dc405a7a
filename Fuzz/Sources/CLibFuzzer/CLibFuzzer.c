// Nothing to compile: the driver is in libFuzzer's runtime, linked by -sanitize=fuzzer.
#include "CLibFuzzer.h"
