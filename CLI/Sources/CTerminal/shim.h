#ifndef MYELIN_CLI_TERMINAL_SHIM_H
#define MYELIN_CLI_TERMINAL_SHIM_H
#include <stdio.h>
// Standard output flushed at every line, also when it goes to a file or a pipe (C's default there is a 4 KiB
// buffer): a training run's log then shows each epoch as it ends, and a run stopped by a time limit keeps its lines.
static inline void myelin_line_buffered_stdout(void) { setvbuf(stdout, NULL, _IOLBF, 0); }
#endif
