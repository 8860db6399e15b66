/* SPDX-License-Identifier: GPL-2.0 */
/* What a guest C test program includes: the KTAP runner and the uffd helpers. */
#ifndef RWP_TEST_H
#define RWP_TEST_H
#include "rwp_ktap.h"
#include "rwp_uffd.h"
#endif /* RWP_TEST_H */
