/*
 * Three symbols the prebuilt @jazzer.js/fuzzer 4.0.0 addon (built on glibc 2.38 / GCC 13) takes
 * from a newer C/C++ runtime than Debian 12 has (glibc 2.36, libstdc++ of GCC 12). prepare.mjs
 * marks those two version needs weak in a copy of the addon and preloads this library, so the
 * names resolve here. Each stand-in has the same meaning for what libFuzzer uses it for.
 */
#include <stdlib.h>

/* C23 strtol/strtoul: identical to C11 except for "0b" prefixes with base 0 or 2, which
 * libFuzzer's decimal flag parsing (-max_total_time=60) never passes. */
long __isoc23_strtol(const char *s, char **end, int base) { return strtol(s, end, base); }
unsigned long __isoc23_strtoul(const char *s, char **end, int base) { return strtoul(s, end, base); }

/* std::ios_base_library_init(): GCC 13 <iostream> references it only to pull in the libstdc++
 * object that constructs std::cout/cerr; GCC 12's libstdc++ constructs them on its own load. */
void _ZSt21ios_base_library_initv(void) {}
