#ifndef MYELIN_CZLIB_SHIM_H
#define MYELIN_CZLIB_SHIM_H
#include <zlib.h>
#endif
