// Everything is inline in include/myelin_math.h; SwiftPM needs one source file for a C target.
#include "myelin_math.h"
