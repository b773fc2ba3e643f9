/* A tiny check harness for the C and C++ tests: count failures, print them with the SDK's message. */
#ifndef ENTITLE_TEST_CHECK_H
#define ENTITLE_TEST_CHECK_H

#include <stdio.h>

#include "entitle.h"

static int checks_failed = 0;
static int checks_passed = 0;

#define CHECK(cond)                                                                                     \
    do {                                                                                                \
        if (cond) {                                                                                     \
            checks_passed++;                                                                            \
        } else {                                                                                        \
            const char *last_ = entitle_last_error();                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond,    \
                    last_ ? last_ : "none");                                                            \
            checks_failed++;                                                                            \
        }                                                                                               \
    } while (0)

#endif
