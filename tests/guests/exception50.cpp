// SPDX-License-Identifier: GPL-2.0-or-later
// A C++ exception thrown through 50 frames and caught, then a checkpoint.
#include <cstdio>
#include <stdexcept>

extern "C" __attribute__((noinline)) void checkpoint(int tag) { __asm__ volatile("" ::"r"(tag) : "memory"); }

struct Guard {   // a destructor runs in each frame as the exception passes
    int *count;
    ~Guard() { ++*count; }
};

__attribute__((noinline)) int descend(int n, int *count)
{
    Guard g{count};
    if (n == 0) {
        throw std::runtime_error("bottom");
    }
    return descend(n - 1, count) + 1;
}

extern "C" __attribute__((noinline)) int level2(int tag) { checkpoint(tag); return tag; }
extern "C" __attribute__((noinline)) int level1(int tag) { return level2(tag) + 1; }

int main()
{
    int count = 0;
    try {
        descend(49, &count);     // 50 frames of descend
    } catch (const std::exception &) {
        level1(30);
    }
    std::printf("%d destructors\n", count);
    return 0;
}
